// FLASHHIP_LOG_KERNEL=1 prints, once per (op, kernel variant, device), which kernel ran and why.
#pragma once

#include <string>

namespace flashhip::ops {

bool kernel_log_enabled();
// `variant` names the kernel and the facts that chose it; printed the first time only.
void log_kernel_once(const std::string& op, const std::string& variant, const std::string& device);

}  // namespace flashhip::ops
