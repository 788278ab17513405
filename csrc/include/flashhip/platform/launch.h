// The boundary between launchers (compiled by nvcc/hipcc) and their callers (plain C++, e.g.
// the torch wrappers): no GPU runtime types cross it, so callers need no GPU toolkit headers.
#pragma once

namespace flashhip {

// The caller's stream as an opaque handle (a cudaStream_t or hipStream_t).
using StreamHandle = void*;

// The code of a launch for which no kernel variant was built (a dtype combination, size or
// wave width outside what the build instantiated): not a runtime error code (those of CUDA and
// HIP stay below it).
inline constexpr int kLaunchNoVariant = 2000;

// A launcher's outcome: the runtime's error code, kLaunchNoVariant, or 0 for success.
struct LaunchStatus {
  int code = 0;
  bool ok() const { return code == 0; }
  bool no_variant() const { return code == kLaunchNoVariant; }
};

// The runtime's description of a failed launch; defined with the kernels.
const char* launch_error_string(LaunchStatus status);

}  // namespace flashhip
