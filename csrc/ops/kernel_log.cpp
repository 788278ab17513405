#include "kernel_log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

namespace flashhip::ops {

bool kernel_log_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("FLASHHIP_LOG_KERNEL");
    return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

void log_kernel_once(const std::string& op, const std::string& variant, const std::string& device) {
  static std::mutex mutex;
  static std::set<std::string> seen;
  std::string key = op + " | " + variant + " | " + device;
  const std::lock_guard<std::mutex> lock(mutex);
  if (!seen.insert(key).second) return;
  std::fprintf(stderr, "[flashhip] %s: %s on %s\n", op.c_str(), variant.c_str(), device.c_str());
}

}  // namespace flashhip::ops
