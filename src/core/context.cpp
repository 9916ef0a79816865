#include "edi/core/context.hpp"

#include <unistd.h>

#include <ctime>

namespace edi {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return date;
}

std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

namespace {
std::string& command_name_storage() {
  static std::string name = "edi-anon";
  return name;
}
}  // namespace

const std::string& command_name() { return command_name_storage(); }
void set_command_name(const std::string& name) { command_name_storage() = name; }

}  // namespace edi
