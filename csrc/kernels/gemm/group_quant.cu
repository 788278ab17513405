// launch_group_quant_fp8: the vector kernel where the group is a power-of-two number of 16-byte
// vectors no wider than a wave and every row starts on a 16-byte boundary (the usual case:
// group 128 of bf16 = 16 lanes), the scalar kernel otherwise. Grid: one wave of resident blocks on
// every multiprocessor (the occupancy the runtime reports), each block striding over groups.
// The vector kernel's groups in flight per thread (4 or 8) come from the device's bandwidth
// (choose_groups_in_flight) unless GroupQuantParams::force_groups_in_flight names one.
#include "flashhip/kernels/gemm/group_quant_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels {
namespace group_quant_detail {

inline constexpr int kFallbackBlocksPerMultiprocessor = 4;  // when the runtime cannot say

// Loaded DRAM latency assumed by the heuristic: ~1.5-2 us from a load's issue to its data under
// a saturating stream on Hopper; the larger value, so that the bytes kept in flight err high.
inline constexpr double kAssumedLoadedLatencySeconds = 2e-6;

template <typename Kernel>
int resident_blocks(Kernel kernel) {
  const int resident = resident_blocks_per_multiprocessor(kernel, kThreads);
  return resident > 0 ? resident : kFallbackBlocksPerMultiprocessor;
}

// One full wave of resident blocks on every multiprocessor (more would only queue behind them).
template <typename Kernel>
int64_t resident_grid(Kernel kernel, const DeviceTraits& traits) {
  return static_cast<int64_t>(traits.multiprocessors) * resident_blocks(kernel);
}

inline bool is_power_of_two(int64_t x) { return x > 0 && (x & (x - 1)) == 0; }

// Group size compiled into the vector kernel's lane arithmetic and reduction (any other power of
// two takes the variant reading it at run time): 128, what DeepSeek-style fp8 GEMMs quantise by.
inline constexpr int kCommonGroupSize = 128;

// The vector kernel for these lanes and this quotient mode (codes_by_bracket).
template <int WAVE, int GROUPS, typename TIn, typename TOut>
auto vector_kernel(int64_t lanes, bool by_bracket) {
  constexpr int kCommonLanes = kCommonGroupSize / kWideVecElems<TIn>;
  if constexpr (kCommonLanes <= WAVE) {
    if (lanes == kCommonLanes) {
      return by_bracket ? group_quant_vector<WAVE, GROUPS, kCommonLanes, true, TIn, TOut>
                        : group_quant_vector<WAVE, GROUPS, kCommonLanes, false, TIn, TOut>;
    }
  }
  return by_bracket ? group_quant_vector<WAVE, GROUPS, 0, true, TIn, TOut> : group_quant_vector<WAVE, GROUPS, 0, false, TIn, TOut>;
}

// Groups each thread of the vector kernel keeps loading (its slots). By Little's law a
// multiprocessor streams its share of the DRAM bandwidth only with that share x the loaded
// latency in flight. The loads are what the slots hold (stores retire without waiting), so:
//   needed = dram_bytes_per_s * read share / multiprocessors * kAssumedLoadedLatencySeconds
//   read share = in bytes / (in + fp8 out + fp32 scale bytes) = 2 / (2 + 1 + 4/128) = 0.66 for
//                16-bit input in groups of 128, 0.80 for fp32
// against what a resident grid of the variant holds, its loads always in flight (the kernel is
// software-pipelined):
//   held(G) = resident blocks per SM (the runtime's occupancy) * kThreads * G * 16 bytes.
// The fewest groups whose held covers needed, else the variant holding more: fewer slots hold
// fewer registers and split small problems over more blocks. And 4 whenever one iteration of the
// 4-slot grid already covers the problem: there the problem, not the kernel, bounds what is in
// flight, and 8 would only leave multiprocessors idle. Unknown bandwidth (0): 4.
//   H200 (132 SMs; the runtime reads 3201 MHz x 6016 bits = 4.81e12; a copy reaches 4.25e12),
//     bf16 in: 4.81e12 * 0.66 / 132 * 2 us = 47.8 KB needed; G=4 at 4 blocks (1024 threads, 50
//     registers for the bracket's kernel, 59 before the mode became a template parameter) holds
//     1024 * 64 B = 65.5 KB: 4. (fp32 in: 0.80, 58 KB needed: 4.) Counting all bytes as reads
//     (72.9 KB) would still pick 4. Measured (H200, 8192x7168 bf16, groups of 128, one run): 4
//     slots 60.8 us, 8 slots 62.7; the 4-slot kernel capped to 5 blocks (48 registers, 36 bytes
//     spilled) 61.2 against 58.5. The kernel is bound by its instructions more than by bytes in
//     flight (the true division, ~10 a value, took it from 58.8 to 63.6 us), so more slots only
//     cost registers. One kernel per mode (the launcher picks it) against both modes' loops in one:
//     56.2 against 58.5 us (same run; M-major 59.4 against 59.3, 1024x7168 12.4 against 13.4).
//   H100 SXM (132 SMs, 3.35e12): 3.35e12 * 0.66 / 132 * 2 us = 33 KB: 4.
//   MI300X (304 CUs, wave64, datasheet 5.3e12): 5.3e12 * 0.66 / 304 * 2 us = 22.9 KB needed
//     (11.5 KB from the 2.66e12 ROCm's clock would give, see arch.h); G=4 for gfx940 (bf16 in,
//     FNUZ out): the bracket's kernel takes 73 VGPRs (the division's 59; both loops in one kernel
//     took 92), 6 waves per SIMD: 6 blocks of 4 wave64s (1536 threads) hold 1536 * 64 B = 98 KB:
//     4 either way (the 8-slot kernel: 140 VGPRs, 3 blocks, 98 KB). Compiled only (hipcc, ROCm 5.2).
// (KB: 1000 bytes.)
template <int WAVE, typename TIn, typename TOut>
int choose_groups_in_flight(const GroupQuantParams& p, const DeviceTraits& traits, int64_t total_groups,
                            int64_t lanes, bool by_bracket) {
  if (p.force_groups_in_flight == kGroupsInFlightFew || p.force_groups_in_flight == kGroupsInFlightMany) {
    return p.force_groups_in_flight;
  }
  if (!(traits.dram_bytes_per_s > 0.0) || traits.multiprocessors <= 0) return kGroupsInFlightFew;
  const int blocks_few = resident_blocks(vector_kernel<WAVE, kGroupsInFlightFew, TIn, TOut>(lanes, by_bracket));
  const int64_t one_iteration_few =
      static_cast<int64_t>(traits.multiprocessors) * blocks_few * (kThreads / lanes) * kGroupsInFlightFew;
  if (total_groups <= one_iteration_few) return kGroupsInFlightFew;
  const double in_bytes = static_cast<double>(p.group_size) * sizeof(TIn);
  const double read_share = in_bytes / (in_bytes + static_cast<double>(p.group_size) * sizeof(TOut) + sizeof(float));
  const double needed =
      traits.dram_bytes_per_s * read_share / traits.multiprocessors * kAssumedLoadedLatencySeconds;
  auto held = [](int blocks, int groups) { return static_cast<double>(blocks) * kThreads * groups * kMaxVectorBytes; };
  const double held_few = held(blocks_few, kGroupsInFlightFew);
  if (held_few >= needed) return kGroupsInFlightFew;
  const int blocks_many = resident_blocks(vector_kernel<WAVE, kGroupsInFlightMany, TIn, TOut>(lanes, by_bracket));
  return held(blocks_many, kGroupsInFlightMany) > held_few ? kGroupsInFlightMany : kGroupsInFlightFew;
}

template <int WAVE, int GROUPS, typename TIn, typename TOut>
gpuError_t launch_vector(const GroupQuantParams& p, gpuStream_t stream, const DeviceTraits& traits,
                         int64_t groups_per_row, int64_t total_groups, int64_t lanes, bool by_bracket) {
  const auto kernel = vector_kernel<WAVE, GROUPS, TIn, TOut>(lanes, by_bracket);
  const int64_t groups_per_step = kThreads / lanes;
  const int64_t needed = (total_groups + groups_per_step * GROUPS - 1) / (groups_per_step * GROUPS);
  const int64_t max_blocks = resident_grid(kernel, traits);
  const int grid = static_cast<int>(needed < max_blocks ? needed : max_blocks);
  const bool by_column = p.scale_stride_m == 1 && p.m > 1 && groups_per_row > 1;
  const UintDivider inner = UintDivider::make(static_cast<uint32_t>(by_column ? p.m : groups_per_row));
  kernel<<<grid, kThreads, 0, stream>>>(p, static_cast<int>(lanes), inner, static_cast<uint32_t>(total_groups),
                                        by_column);
  return gpuGetLastError();
}

template <int WAVE, typename TIn, typename TOut>
gpuError_t launch_typed(const GroupQuantParams& p, gpuStream_t stream, const DeviceTraits& traits,
                        GroupQuantLaunchInfo* info) {
  constexpr int kVec = kWideVecElems<TIn>;
  const int64_t groups_per_row = p.k / p.group_size;
  const int64_t total_groups = p.m * groups_per_row;
  const int64_t lanes = p.group_size / kVec;
  // The kernel's 32-bit group indices run to total_groups + 2 * (groups per grid iteration):
  // an iteration is at most multiprocessors * 8 resident blocks * 256 groups * 8 slots, far
  // below 2^31 for any device, so total_groups < 2^31 suffices.
  const bool vector = p.group_size % kVec == 0 && is_power_of_two(lanes) && lanes <= WAVE &&
                      is_aligned(p.input, kMaxVectorBytes) && (p.input_stride_m * sizeof(TIn)) % kMaxVectorBytes == 0 &&
                      is_aligned(p.out, kVec) && p.out_stride_m % kVec == 0 && total_groups <= INT32_MAX;
  if (vector) {
    const bool by_bracket = codes_by_bracket<TOut>(p.eps);
    const int groups = choose_groups_in_flight<WAVE, TIn, TOut>(p, traits, total_groups, lanes, by_bracket);
    info->variant = "vector";
    info->groups_in_flight = groups;
    return groups == kGroupsInFlightMany
               ? launch_vector<WAVE, kGroupsInFlightMany, TIn, TOut>(p, stream, traits, groups_per_row, total_groups, lanes,
                                                                    by_bracket)
               : launch_vector<WAVE, kGroupsInFlightFew, TIn, TOut>(p, stream, traits, groups_per_row, total_groups, lanes,
                                                                   by_bracket);
  }
  info->variant = "scalar";
  info->groups_in_flight = 0;
  const int64_t needed = (total_groups + kThreads - 1) / kThreads;
  const int64_t max_blocks = resident_grid(group_quant_scalar<TIn, TOut>, traits);
  const int grid = static_cast<int>(needed < max_blocks ? needed : max_blocks);
  group_quant_scalar<TIn, TOut><<<grid, kThreads, 0, stream>>>(p, groups_per_row, total_groups);
  return gpuGetLastError();
}

template <int WAVE, typename TIn>
gpuError_t dispatch_out(const GroupQuantParams& p, gpuStream_t stream, const DeviceTraits& traits,
                        GroupQuantLaunchInfo* info) {
  switch (p.fp8_dtype) {
    case DType::kFloat8E4M3FN: return launch_typed<WAVE, TIn, fp8_e4m3fn_t>(p, stream, traits, info);
    case DType::kFloat8E4M3FNUZ: return launch_typed<WAVE, TIn, fp8_e4m3fnuz_t>(p, stream, traits, info);
    default: return gpuErrorInvalidValue;
  }
}

}  // namespace group_quant_detail

LaunchStatus launch_group_quant_fp8(const GroupQuantParams& p, StreamHandle handle, GroupQuantLaunchInfo* info) {
  using namespace group_quant_detail;
  GroupQuantLaunchInfo unused;
  if (info == nullptr) info = &unused;
  if (p.m == 0 || p.k == 0) return {};
  if (p.group_size <= 0 || p.k % p.group_size != 0) return {static_cast<int>(gpuErrorInvalidValue)};
  const auto stream = static_cast<gpuStream_t>(handle);
  DeviceTraits traits;
  gpuError_t err = current_device_traits(&traits);
  if (err == gpuSuccess) {
    err = dispatch_wave_size(traits.wave_size, [&](auto wave) {
      constexpr int kWave = decltype(wave)::value;
      info->wave = kWave;
      return dispatch_activation_dtype(p.in_dtype, gpuErrorInvalidValue, [&](auto in) {
        return dispatch_out<kWave, decltype(in)>(p, stream, traits, info);
      });
    });
  }
  return {static_cast<int>(err)};
}

}  // namespace flashhip::kernels
