#include "edi/core/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <cstdlib>
#include <utility>

namespace edi {

namespace {

std::mutex g_settings_mutex;
ProgressSettings g_settings;

/// Not rank 0 of an MPI or SLURM step: print nothing.
bool other_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(var);
    if (v && *v && std::string(v) != "0") return true;
  }
  return false;
}

}  // namespace

void set_progress_settings(const ProgressSettings& settings) {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  g_settings = settings;
}

ProgressSettings progress_settings() {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  return g_settings;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%ld s", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label, std::size_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), start_(Clock::now()), last_print_(start_),
      settings_(progress_settings()) {
  if (!settings_.out) settings_.out = stderr;
  active_ = settings_.enabled && !other_rank();
  terminal_ = settings_.terminal < 0 ? isatty(fileno(settings_.out)) == 1 : settings_.terminal == 1;
  if (active_ && terminal_) maybe_print(true);
}

Progress::~Progress() { end(std::uncaught_exceptions() == 0); }

void Progress::finish() { end(true); }

void Progress::add(std::size_t n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ += n;
  }
  maybe_print(false);
}

void Progress::set(std::size_t done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = done;
  }
  maybe_print(false);
}

void Progress::set_total(std::size_t total) {
  std::lock_guard<std::mutex> lock(mutex_);
  total_ = total;
}

std::string Progress::line() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return line_locked(Clock::now());
}

std::string Progress::line_locked(Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string s = "progress: " + label_ + ": " + std::to_string(done_);
  if (total_ > 0) s += "/" + std::to_string(total_);
  if (!unit_.empty()) s += " " + unit_;
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(std::min(done_, total_)) / static_cast<double>(total_));
    s += pct;
  }
  s += ", elapsed " + format_duration(elapsed);
  if (finished_) return s + ", done";
  if (total_ > 0 && done_ > 0 && done_ <= total_)
    s += ", ETA " + format_duration(elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_));
  else s += ", ETA ?";
  return s;
}

void Progress::maybe_print(bool force) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_ && !force) return;
  const Clock::time_point now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  // A terminal line is cheap to rewrite, but not on every image: at most ~5 per second.
  const double every = terminal_ ? 0.2 : settings_.every_seconds;
  if (!force && since < every) return;
  last_print_ = now;
  printed_ = true;
  const std::string s = line_locked(now);
  if (terminal_) std::fprintf(settings_.out, "\r%s\033[K", s.c_str());
  else std::fprintf(settings_.out, "%s\n", s.c_str());
  std::fflush(settings_.out);
}

void Progress::end(bool completed) {
  if (!active_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (!printed_) return;
  if (terminal_) {
    std::fprintf(settings_.out, "\r\033[K");  // the step's own log lines say what it did
  } else if (completed) {
    std::fprintf(settings_.out, "%s\n", line_locked(Clock::now()).c_str());
  }
  std::fflush(settings_.out);
}

}  // namespace edi
