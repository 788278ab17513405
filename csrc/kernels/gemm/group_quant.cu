// launch_group_quant_fp8: the vector kernel where the group is a power-of-two number of 16-byte
// vectors no wider than a wave and every row starts on a 16-byte boundary (the usual case:
// group 128 of bf16 = 16 lanes), the scalar kernel otherwise. Grid: one wave of resident blocks on
// every multiprocessor (the occupancy the runtime reports), each block striding over groups.
#include "flashhip/kernels/gemm/group_quant_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels {
namespace group_quant_detail {

inline constexpr int kFallbackBlocksPerMultiprocessor = 4;  // when the runtime cannot say

// One full wave of resident blocks on every multiprocessor (more would only queue behind them).
template <typename Kernel>
int64_t resident_grid(Kernel kernel, const DeviceTraits& traits) {
  const int resident = resident_blocks_per_multiprocessor(kernel, kThreads);
  return static_cast<int64_t>(traits.multiprocessors) * (resident > 0 ? resident : kFallbackBlocksPerMultiprocessor);
}

inline bool is_power_of_two(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

template <int WAVE, typename TIn, typename TOut>
gpuError_t launch_typed(const GroupQuantParams& p, gpuStream_t stream, const DeviceTraits& traits) {
  constexpr int kVec = kWideVecElems<TIn>;
  const int64_t groups_per_row = p.k / p.group_size;
  const int64_t total_groups = p.m * groups_per_row;
  const int64_t lanes = p.group_size / kVec;
  const bool vector = p.group_size % kVec == 0 && is_power_of_two(lanes) && lanes <= WAVE &&
                      is_aligned(p.input, kMaxVectorBytes) && (p.input_stride_m * sizeof(TIn)) % kMaxVectorBytes == 0 &&
                      is_aligned(p.out, kVec) && p.out_stride_m % kVec == 0 && total_groups <= INT32_MAX;
  if (vector) {
    const int64_t groups_per_step = kThreads / lanes;
    const int64_t needed = (total_groups + groups_per_step * kGroupsInFlight - 1) / (groups_per_step * kGroupsInFlight);
    const int64_t max_blocks = resident_grid(group_quant_vector<WAVE, TIn, TOut>, traits);
    const int grid = static_cast<int>(needed < max_blocks ? needed : max_blocks);
    group_quant_vector<WAVE, TIn, TOut><<<grid, kThreads, 0, stream>>>(
        p, static_cast<int>(lanes), static_cast<uint32_t>(groups_per_row), static_cast<uint32_t>(total_groups),
        /*by_column=*/p.scale_stride_m == 1 && p.m > 1 && groups_per_row > 1);
  } else {
    const int64_t needed = (total_groups + kThreads - 1) / kThreads;
    const int64_t max_blocks = resident_grid(group_quant_scalar<TIn, TOut>, traits);
    const int grid = static_cast<int>(needed < max_blocks ? needed : max_blocks);
    group_quant_scalar<TIn, TOut><<<grid, kThreads, 0, stream>>>(p, groups_per_row, total_groups);
  }
  return gpuGetLastError();
}

template <int WAVE, typename TIn>
gpuError_t dispatch_out(const GroupQuantParams& p, gpuStream_t stream, const DeviceTraits& traits) {
  switch (p.fp8_dtype) {
    case DType::kFloat8E4M3FN: return launch_typed<WAVE, TIn, fp8_e4m3fn_t>(p, stream, traits);
    case DType::kFloat8E4M3FNUZ: return launch_typed<WAVE, TIn, fp8_e4m3fnuz_t>(p, stream, traits);
    default: return gpuErrorInvalidValue;
  }
}

}  // namespace group_quant_detail

LaunchStatus launch_group_quant_fp8(const GroupQuantParams& p, StreamHandle handle) {
  using namespace group_quant_detail;
  if (p.m == 0 || p.k == 0) return {};
  if (p.group_size <= 0 || p.k % p.group_size != 0) return {static_cast<int>(gpuErrorInvalidValue)};
  const auto stream = static_cast<gpuStream_t>(handle);
  DeviceTraits traits;
  gpuError_t err = current_device_traits(&traits);
  if (err == gpuSuccess) {
    err = dispatch_wave_size(traits.wave_size, [&](auto wave) {
      constexpr int kWave = decltype(wave)::value;
      return dispatch_activation_dtype(p.in_dtype, gpuErrorInvalidValue,
                                       [&](auto in) { return dispatch_out<kWave, decltype(in)>(p, stream, traits); });
    });
  }
  return {static_cast<int>(err)};
}

}  // namespace flashhip::kernels
