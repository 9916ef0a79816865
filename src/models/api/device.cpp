// The one device parser of the model stages. It lives in their interface layer
// (model_api), so that the ported nets, the human port and the registry share it.
#include <ATen/Context.h>

#include <string>

#include "edi/core/error.hpp"
#include "edi/models/classifier.hpp"

namespace edi::models {

c10::Device parse_device(const std::string& device) {
  if (device == "cpu") return c10::Device(c10::kCPU);
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (device.size() > 5) {
      const std::string digits = device.substr(5);
      if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
        throw ConfigError("--device " + device + ": expected cpu, cuda or cuda:<index>");
      index = std::stoi(digits);
    }
    if (!at::hasCUDA())
      throw ConfigError("--device " + device + ": this LibTorch build has no CUDA support (use --device cpu)");
    const auto n = at::getNumGPUs();
    if (static_cast<std::size_t>(index) >= n)
      throw ConfigError("--device " + device + ": no such GPU (" + std::to_string(n) + " visible)");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw ConfigError("--device " + device + ": expected cpu, cuda or cuda:<index>");
}

}  // namespace edi::models
