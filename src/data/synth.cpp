#include "edi/data/synth.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "edi/core/csv.hpp"
#include "edi/core/error.hpp"
#include "edi/core/fs.hpp"
#include "edi/core/rng.hpp"

namespace edi::data {

namespace {

/// Identity-level face parameters (all in units of the face width).
struct Face {
  double aspect, eye_dx, eye_y, eye_w, eye_h, eye_tilt, brow_tilt, brow_gap, brow_thick;
  double nose_len, nose_w, mouth_w, mouth_y, mouth_curve, jaw;
  cv::Scalar iris, skin, hair;
  struct Mole { double x, y, r; } moles[3];
  int n_moles;
  bool old, female;
  int group;
};

constexpr const char* kGroups[4] = {"group-a", "group-b", "group-c", "group-d"};
// Skin tones (BGR) per group.
const cv::Scalar kSkin[4] = {{150, 180, 225}, {110, 150, 200}, {70, 100, 150}, {40, 65, 105}};

double range(CounterRng& r, double lo, double hi) { return lo + (hi - lo) * r.uniform(); }

RngKey identity_key(std::uint64_t seed, int identity) {
  return RngKey{seed, stable_hash64("synth-identity:" + std::to_string(identity)), 0, RngStream::kSynth};
}

Face make_face(std::uint64_t seed, int identity) {
  CounterRng r(identity_key(seed, identity));
  Face f{};
  f.aspect = range(r, 1.15, 1.45);
  f.eye_dx = range(r, 0.17, 0.27);
  f.eye_y = range(r, -0.12, 0.0);
  f.eye_w = range(r, 0.08, 0.14);
  f.eye_h = range(r, 0.035, 0.075);
  f.eye_tilt = range(r, -15, 15);
  f.brow_tilt = range(r, -20, 20);
  f.brow_gap = range(r, 0.05, 0.12);
  f.brow_thick = range(r, 0.02, 0.05);
  f.nose_len = range(r, 0.12, 0.26);
  f.nose_w = range(r, 0.05, 0.12);
  f.mouth_w = range(r, 0.14, 0.30);
  f.mouth_y = range(r, 0.26, 0.38);
  f.mouth_curve = range(r, -0.05, 0.06);
  f.jaw = range(r, 0.85, 1.0);
  f.iris = cv::Scalar(range(r, 20, 200), range(r, 20, 160), range(r, 10, 120));
  f.n_moles = 1 + static_cast<int>(r.below(3));
  for (auto& m : f.moles) m = {range(r, -0.3, 0.3), range(r, -0.1, 0.45), range(r, 0.012, 0.025)};
  // Attributes come from their own draws, after the identity details.
  f.old = r.uniform() < 0.35;
  f.female = r.uniform() < 0.5;
  f.group = static_cast<int>(r.below(4));
  const cv::Scalar base = kSkin[f.group];
  f.skin = base + cv::Scalar(range(r, -10, 10), range(r, -10, 10), range(r, -10, 10));
  const double hb = range(r, 15, 70);
  f.hair = cv::Scalar(hb * range(r, 0.6, 1.0), hb * range(r, 0.7, 1.1), hb * range(r, 0.9, 1.6));
  if (f.old) f.hair = 0.3 * f.hair + 0.7 * cv::Scalar(185, 185, 190);
  return f;
}

}  // namespace

SynthIdentityLabels synth_identity_labels(std::uint64_t seed, int identity) {
  const Face f = make_face(seed, identity);
  char name[32];
  std::snprintf(name, sizeof name, "id%04d", identity);
  return {name, f.old ? "old" : "young", f.female ? "female" : "male", kGroups[f.group]};
}

cv::Mat synth_render(std::uint64_t seed, int identity, int index, int size, double jitter) {
  const Face f = make_face(seed, identity);
  CounterRng r(RngKey{seed, stable_hash64("synth-image:" + std::to_string(identity)), static_cast<std::uint32_t>(index),
                      RngStream::kSynth});
  // Draw at 2× with sub-pixel precision, then area-downscale (antialiasing).
  constexpr int kSuper = 2;
  constexpr int kShift = 4;  // fixed-point bits for cv drawing
  const int S = size * kSuper;
  const double u = S;  // face width unit below is a fraction of S
  const cv::Scalar bg(range(r, 60, 200), range(r, 60, 200), range(r, 60, 200));
  cv::Mat img(S, S, CV_8UC3, bg);
  auto P = [&](double x, double y) {  // face coords (unit = face width) → fixed-point pixel
    return cv::Point(static_cast<int>(std::lround((0.5 + x * 0.55) * u * (1 << kShift))),
                     static_cast<int>(std::lround((0.5 + y * 0.55) * u * (1 << kShift))));
  };
  auto L = [&](double len) { return static_cast<int>(std::lround(len * 0.55 * u * (1 << kShift))); };
  auto T = [&](double len) { return std::max(1, static_cast<int>(std::lround(len * 0.55 * u))); };
  const auto AA = cv::LINE_AA;
  const double fh = 0.5 * f.aspect;  // half face height
  // Hair behind the head: long for female identities.
  if (f.female) cv::ellipse(img, P(0, 0.15), cv::Size(L(0.62), L(fh + 0.2)), 0, 0, 360, f.hair, cv::FILLED, AA, kShift);
  // Head.
  cv::ellipse(img, P(0, 0.05), cv::Size(L(0.5 * f.jaw), L(fh)), 0, 0, 360, f.skin, cv::FILLED, AA, kShift);
  // Hair cap (short for male identities).
  cv::ellipse(img, P(0, -fh + 0.12), cv::Size(L(0.52), L(f.female ? 0.32 : 0.22)), 0, 180, 360, f.hair, cv::FILLED, AA,
              kShift);
  // Beard shading for male identities.
  if (!f.female)
    cv::ellipse(img, P(0, 0.36), cv::Size(L(0.36 * f.jaw), L(0.2)), 0, 0, 180, 0.75 * f.skin, cv::FILLED, AA, kShift);
  // Forehead lines for the old group.
  if (f.old)
    for (int k = 0; k < 3; ++k)
      cv::ellipse(img, P(0, -0.3 + 0.06 * k), cv::Size(L(0.2), L(0.03)), 0, 200, 340, 0.7 * f.skin, T(0.012), AA, kShift);
  // Eyes, irises, brows.
  for (int side : {-1, 1}) {
    const double ex = side * f.eye_dx, ey = f.eye_y;
    cv::ellipse(img, P(ex, ey), cv::Size(L(f.eye_w), L(f.eye_h)), side * f.eye_tilt, 0, 360, cv::Scalar(245, 245, 245),
                cv::FILLED, AA, kShift);
    cv::circle(img, P(ex, ey), L(f.eye_h * 0.8), f.iris, cv::FILLED, AA, kShift);
    cv::circle(img, P(ex, ey), L(f.eye_h * 0.35), cv::Scalar(10, 10, 10), cv::FILLED, AA, kShift);
    const double by = ey - f.eye_h - f.brow_gap;
    const double t = side * f.brow_tilt * M_PI / 180.0;
    cv::line(img, P(ex - f.eye_w * std::cos(t), by - f.eye_w * std::sin(t)),
             P(ex + f.eye_w * std::cos(t), by + f.eye_w * std::sin(t)), 0.6 * f.hair, T(f.brow_thick), AA, kShift);
  }
  // Nose.
  const cv::Point nose[3] = {P(0, f.eye_y + 0.04), P(-f.nose_w, f.eye_y + 0.04 + f.nose_len),
                             P(f.nose_w, f.eye_y + 0.04 + f.nose_len)};
  cv::polylines(img, std::vector<std::vector<cv::Point>>{{nose[0], nose[1], nose[2]}}, false, 0.65 * f.skin, T(0.02), AA,
                kShift);
  // Mouth: a curved line.
  std::vector<cv::Point> mouth;
  for (int k = 0; k <= 8; ++k) {
    const double x = -f.mouth_w + 2 * f.mouth_w * k / 8.0;
    const double y = f.mouth_y + f.mouth_curve * (1 - (x / f.mouth_w) * (x / f.mouth_w));
    mouth.push_back(P(x, y));
  }
  cv::polylines(img, std::vector<std::vector<cv::Point>>{mouth}, false, cv::Scalar(60, 60, 150), T(0.03), AA, kShift);
  for (int k = 0; k < f.n_moles; ++k)
    cv::circle(img, P(f.moles[k].x, f.moles[k].y), L(f.moles[k].r), 0.45 * f.skin, cv::FILLED, AA, kShift);

  // Per-image jitter: pose (rotation, scale, shift), lighting, noise.
  const double angle = jitter * range(r, -8, 8);
  const double scale = 1.0 + jitter * range(r, -0.06, 0.06);
  const double dx = jitter * range(r, -0.04, 0.04) * S, dy = jitter * range(r, -0.04, 0.04) * S;
  cv::Mat rot = cv::getRotationMatrix2D(cv::Point2f(S / 2.f, S / 2.f), angle, scale);
  rot.at<double>(0, 2) += dx;
  rot.at<double>(1, 2) += dy;
  cv::Mat warped;
  cv::warpAffine(img, warped, rot, img.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, bg);
  cv::Mat small;
  cv::resize(warped, small, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  cv::Mat fimg;
  small.convertTo(fimg, CV_32FC3);
  const double gain = 1.0 + jitter * range(r, -0.2, 0.2);
  const double gx = jitter * range(r, -0.25, 0.25), gy = jitter * range(r, -0.25, 0.25);
  const double noise = jitter * 4.0;
  // Lighting: a gain times a linear ramp, applied per row and column.
  cv::Mat ramp(size, size, CV_32FC1);
  for (int y = 0; y < size; ++y) {
    float* row = ramp.ptr<float>(y);
    for (int x = 0; x < size; ++x)
      row[x] = static_cast<float>(gain * (1.0 + gx * (x / double(size) - 0.5) + gy * (y / double(size) - 0.5)));
  }
  cv::Mat ramp3;
  cv::merge(std::vector<cv::Mat>{ramp, ramp, ramp}, ramp3);
  cv::multiply(fimg, ramp3, fimg);
  if (noise > 0) {
    // Sensor noise: OpenCV's deterministic generator, seeded from this image's key.
    cv::Mat n(size, size, CV_32FC3);
    cv::RNG cvrng(r.next_u64());
    cvrng.fill(n, cv::RNG::NORMAL, 0.0, noise);
    fimg += n;
  }
  cv::Mat out;
  fimg.convertTo(out, CV_8UC3);  // saturating, rounding
  return out;
}

SynthSummary synth_generate(const SynthSpec& spec) {
  const auto t0 = std::chrono::steady_clock::now();
  create_private_dir(spec.out);
  std::string labels = csv_line({"identity", "age", "gender", "race"});
  const std::vector<int> png_params{cv::IMWRITE_PNG_COMPRESSION, 1};
  SynthSummary summary;
  for (int k = 0; k < spec.identities; ++k) {
    const SynthIdentityLabels lab = synth_identity_labels(spec.seed, k);
    const fs::path dir = spec.out / lab.name;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IoError(dir.string() + ": cannot create directory: " + ec.message());
    for (int i = 0; i < spec.per_identity; ++i) {
      const cv::Mat img = synth_render(spec.seed, k, i, spec.size, spec.jitter);
      std::vector<uchar> buf;
      cv::imencode(".png", img, buf, png_params);
      char name[48];
      std::snprintf(name, sizeof name, "%s_%04d.png", lab.name.c_str(), i);
      write_file_atomic(dir / name, std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()),
                        Durability::kProcessCrash);
      ++summary.images;
    }
    labels += csv_line({lab.name, lab.age, lab.gender, lab.race});
    ++summary.identities;
  }
  write_file_atomic(spec.out / "labels.csv", labels);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace edi::data
