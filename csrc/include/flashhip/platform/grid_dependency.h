// Programmatic dependent launch, device side (sm_90): a kernel launched with launch_dependent
// (platform/runtime.h) starts while the kernel before it in the stream finishes; it waits here
// before touching global memory, and lets its own dependents start early. No-ops elsewhere,
// where kernels of one stream never overlap.
#pragma once

#include "flashhip/platform/macros.h"

namespace flashhip {

// Returns once every kernel this one depends on has completed and its writes are visible.
FH_DEVICE FH_INLINE void grid_dependency_wait() {
#if FH_ARCH_SM90A
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Allows the next kernel of the stream, if launched as a dependent, to start launching now.
FH_DEVICE FH_INLINE void grid_dependents_launch() {
#if FH_ARCH_SM90A
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace flashhip
