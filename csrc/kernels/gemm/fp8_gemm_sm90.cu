// fp8_gemm on Hopper (sm_90a): the launch of the plan (fp8_gemm_plan_sm90.h), the tensor maps,
// and the split-K reduction (operands are packed by operand_pack.cu).
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "flashhip/kernels/gemm/fp8_gemm_arch.h"
#include "flashhip/kernels/gemm/operand_pack.h"
#include "flashhip/platform/arch.h"
#include "flashhip/platform/grid_dependency.h"
#include "flashhip/platform/runtime.h"

#if FH_PLATFORM_CUDA
#include "flashhip/kernels/gemm/fp8_gemm_wgmma_sm90.cuh"
#endif

namespace flashhip::kernels {

#if FH_PLATFORM_CUDA
namespace {

using namespace sm90_gemm;

// ---- split-K: out = sum over splits of the fp32 partials ----
template <typename OutT>
__global__ void FH_LAUNCH_BOUNDS(256) reduce_splits_kernel(
    OutT* __restrict__ out,              // [m, n] at out_stride_m
    const float* __restrict__ partials,  // [splits, m, n] dense
    int64_t m, int64_t n, int64_t out_stride_m, int splits) {
  grid_dependency_wait();  // the main kernel's partials are complete
  const int64_t quads = m * n / 4;  // n % 64 == 0: a row is whole quads
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads; q += int64_t(gridDim.x) * blockDim.x) {
    // Split by split, in order (the same sum on every run), with kInFlight splits' loads issued
    // before their adds: a decode shape's few outputs made the one-load-at-a-time loop a chain
    // of L2 round trips (1x512x7168, 14 splits: the sum ended 2.3 us after the main kernel, H200).
    constexpr int kInFlight = 8;
    const float4* part = reinterpret_cast<const float4*>(partials) + q;  // a split is `quads` apart
    float4 sum = part[0];
    int s = 1;
    for (; s + kInFlight <= splits; s += kInFlight) {
      float4 v[kInFlight];
#pragma unroll
      for (int j = 0; j < kInFlight; ++j) v[j] = part[(s + j) * quads];
#pragma unroll
      for (int j = 0; j < kInFlight; ++j) sum.x += v[j].x, sum.y += v[j].y, sum.z += v[j].z, sum.w += v[j].w;
    }
    for (; s < splits; ++s) {
      const float4 v = part[s * quads];
      sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
    }
    const int64_t row = q * 4 / n, col = q * 4 % n;
    OutT* o = out + row * out_stride_m + col;
    o[0] = from_float<OutT>(sum.x), o[1] = from_float<OutT>(sum.y);
    o[2] = from_float<OutT>(sum.z), o[3] = from_float<OutT>(sum.w);
  }
}

// Sets a kernel attribute once per device: attributes belong to the kernel as loaded on each
// device. `done` is the calling launcher's own (one per kernel and attribute).
constexpr int kMaxDevices = 64;
using OptInFlags = std::atomic<bool>[kMaxDevices];
template <typename Kernel>
gpuError_t set_attribute_once(Kernel kernel, cudaFuncAttribute attribute, int value, OptInFlags& done) {
  int device = 0;
  FH_RETURN_IF_ERROR(cudaGetDevice(&device));
  if (device >= 0 && device < kMaxDevices && done[device].load(std::memory_order_acquire)) return gpuSuccess;
  FH_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, attribute, value));
  if (device >= 0 && device < kMaxDevices) done[device].store(true, std::memory_order_release);
  return gpuSuccess;
}
// Raises a kernel's dynamic shared-memory limit (once per device).
template <typename Kernel>
gpuError_t opt_in_smem(Kernel kernel, int bytes, OptInFlags& done) {
  return set_attribute_once(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes, done);
}

template <int kBlockM, typename OutT, int kClusterM = 1, int kClusterN = 1, int kTileN = kBlockN>
gpuError_t launch_main_loop(const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args, int grid,
                            cudaStream_t stream) {
  constexpr int kStages = main_loop_stages(kBlockM, sizeof(OutT), kTileN);
  using Cfg = Config<kBlockM, kStages, OutT, kClusterM, kClusterN, kTileN>;
  const auto launch = [&](auto aligned, OptInFlags& opted_in) -> gpuError_t {
    auto* kernel = fp8_gemm_wgmma_kernel<kBlockM, kStages, OutT, kClusterM, kClusterN, kTileN, decltype(aligned)::value>;
    FH_RETURN_IF_ERROR(opt_in_smem(kernel, Cfg::kSmemBytes, opted_in));
    if constexpr (Cfg::kCluster > 1) {
      return launch_dependent_clustered(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, Cfg::kCluster, map_a,
                                        map_b, args);
    } else {
      return launch_dependent(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, map_a, map_b, args);
    }
  };
  static OptInFlags opted_in_aligned, opted_in_rows;
  return args.a_scale_columns_aligned ? launch(std::true_type{}, opted_in_aligned) : launch(std::false_type{}, opted_in_rows);
}

// The main kernel with the plan's tile height, width and clusters (no multicast for 64-row or
// wide tiles; wide tiles are 128 rows).
template <int kBlockM, typename OutT>
gpuError_t launch_main_loop_clusters(const Plan& plan, const CUtensorMap& map_a, const CUtensorMap& map_b,
                                     const KernelArgs& args, cudaStream_t stream) {
  if constexpr (kBlockM == 128) {
    if (plan.block_n == kWideBlockN) {
      if (plan.cluster_m * plan.cluster_n != 1) return gpuErrorInvalidValue;
      return launch_main_loop<kBlockM, OutT, 1, 1, kWideBlockN>(map_a, map_b, args, plan.grid, stream);
    }
  }
  if constexpr (kBlockM > 64) {
    if (plan.cluster_m == 2) return launch_main_loop<kBlockM, OutT, 2, 1>(map_a, map_b, args, plan.grid, stream);
    if (plan.cluster_n == 2) return launch_main_loop<kBlockM, OutT, 1, 2>(map_a, map_b, args, plan.grid, stream);
  }
  if (plan.cluster_m * plan.cluster_n != 1 || plan.block_n != kBlockN) return gpuErrorInvalidValue;
  return launch_main_loop<kBlockM, OutT>(map_a, map_b, args, plan.grid, stream);
}

// 2-CTA clusters of the main kernel the device holds at once, asked once per device (every
// variant takes a whole multiprocessor, so the answer is the GPCs' and the same for all).
int resident_pair_clusters(int sms) {
  static std::atomic<int> cached[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    (void)cudaGetLastError();
    return sms / 2;
  }
  if (const int known = cached[device].load(std::memory_order_acquire); known > 0) return known;
  constexpr int kStages = main_loop_stages(128, 2);
  using Cfg = Config<128, kStages, bf16_t, 2, 1>;
  auto* kernel = fp8_gemm_wgmma_kernel<128, kStages, bf16_t, 2, 1, kBlockN, true>;
  static OptInFlags opted_in;
  int clusters = 0;
  if (opt_in_smem(kernel, Cfg::kSmemBytes, opted_in) == gpuSuccess)
    clusters = max_resident_clusters(kernel, Cfg::kThreads, Cfg::kSmemBytes, 2);
  (void)cudaGetLastError();
  if (clusters <= 0 || clusters > sms / 2) clusters = sms / 2;
  cached[device].store(clusters, std::memory_order_release);
  return clusters;
}

template <int kTokens, bool kWide, typename OutT>
gpuError_t launch_swap(const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args, int grid,
                       bool row_copy, cudaStream_t stream) {
  constexpr int kStages = swap_stages(kTokens, kWide), kBlocks = swap_blocks(kTokens, kWide);
  using Cfg = SwapConfig<kTokens, kStages, kBlocks>;
  const auto launch = [&](auto rows, OptInFlags& opted_in) -> gpuError_t {
    auto* kernel = fp8_gemm_wgmma_swap_kernel<kTokens, kStages, kBlocks, OutT, decltype(rows)::value>;
    FH_RETURN_IF_ERROR(opt_in_smem(kernel, Cfg::kSmemBytes, opted_in));
    return launch_dependent(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, map_a, map_b, args);
  };
  static OptInFlags opted_in_tma, opted_in_rows;
  return row_copy ? launch(std::true_type{}, opted_in_rows) : launch(std::false_type{}, opted_in_tma);
}

// The decode kernel with its split-K summed in clusters of `split` CTAs (TMA weights; OutT is the
// output's type). gpuErrorNoVariant when the device cannot hold all grid / split clusters at once
// (the caller then takes the fp32 partials and the second kernel).
template <int kTokens, bool kWide, typename OutT>
gpuError_t launch_swap_cluster_split(const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args,
                                     int grid, int split, cudaStream_t stream) {
  constexpr int kStages = swap_stages(kTokens, kWide), kBlocks = swap_blocks(kTokens, kWide);
  using Cfg = SwapConfig<kTokens, kStages, kBlocks>;
  auto* kernel = fp8_gemm_wgmma_swap_kernel<kTokens, kStages, kBlocks, OutT, false, true>;
  static OptInFlags opted_in;
  FH_RETURN_IF_ERROR(opt_in_smem(kernel, Cfg::kSmemBytes, opted_in));
  // Clusters past 8 CTAs are Hopper's non-portable sizes, allowed per kernel.
  static OptInFlags non_portable_allowed;
  if (split > 8 && set_attribute_once(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1, non_portable_allowed) !=
                       gpuSuccess) {
    (void)cudaGetLastError();
    return gpuErrorNoVariant;
  }
  if (max_resident_clusters(kernel, Cfg::kThreads, Cfg::kSmemBytes, split) * split < grid) return gpuErrorNoVariant;
  return launch_dependent_clustered(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, split, map_a, map_b, args);
}

template <typename OutT>
gpuError_t launch_typed(const Plan& plan, const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args,
                        cudaStream_t stream) {
  const auto swap = [&](auto tokens) {
    constexpr int kTokens = decltype(tokens)::value;
    if (plan.swap_cluster_split)
      return plan.swap_wide ? launch_swap_cluster_split<kTokens, true, OutT>(map_a, map_b, args, plan.grid, plan.split_k, stream)
                            : launch_swap_cluster_split<kTokens, false, OutT>(map_a, map_b, args, plan.grid, plan.split_k, stream);
    return plan.swap_wide ? launch_swap<kTokens, true, OutT>(map_a, map_b, args, plan.grid, plan.swap_row_copy, stream)
                          : launch_swap<kTokens, false, OutT>(map_a, map_b, args, plan.grid, plan.swap_row_copy, stream);
  };
  switch (plan.swap_tokens) {
    case 0: break;
    case 8: return swap(std::integral_constant<int, 8>{});
    case 16: return swap(std::integral_constant<int, 16>{});
    case 32: return swap(std::integral_constant<int, 32>{});
    case 64: return swap(std::integral_constant<int, 64>{});
    default: return gpuErrorInvalidValue;
  }
  if (plan.block_m == 64) return launch_main_loop_clusters<64, OutT>(plan, map_a, map_b, args, stream);
  if (plan.block_m == 128) return launch_main_loop_clusters<128, OutT>(plan, map_a, map_b, args, stream);
  if constexpr (sizeof(OutT) == 2) {
    if (plan.block_m == 256) return launch_main_loop_clusters<256, OutT>(plan, map_a, map_b, args, stream);
  }
  return gpuErrorInvalidValue;
}

// The cached device traits say whether this is an sm_90 device (wgmma, TMA).
bool current_device_is_sm90(DeviceTraits* traits) {
  if (current_device_traits(traits) != gpuSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return traits->has_wgmma && traits->has_tma;
}

// Calls f(OutT{}) with the element type of out_dtype.
template <typename F>
gpuError_t with_out_type(DType out_dtype, F&& f) {
  switch (out_dtype) {
    case DType::kBFloat16: return f(bf16_t{});
    case DType::kFloat16: return f(half_t{});
    case DType::kFloat32: return f(float{});
    default: return gpuErrorNoVariant;
  }
}

}  // namespace

bool fp8_gemm_sm90_supports_current_device() {
  DeviceTraits traits;
  return current_device_is_sm90(&traits);
}

size_t fp8_gemm_workspace_bytes_sm90(const Fp8GemmParams& p) {
  DeviceTraits traits;
  if (!current_device_is_sm90(&traits)) return 0;
  return make_plan(p, traits.multiprocessors, resident_pair_clusters(traits.multiprocessors)).bytes;
}

LaunchStatus launch_fp8_gemm_sm90(const Fp8GemmParams& p, StreamHandle stream_handle, Fp8GemmLaunchInfo* info) {
  if (p.m == 0) return {};
  DeviceTraits traits;
  if (!current_device_is_sm90(&traits)) {
    if (info) info->variant = "unsupported: the fp8 wgmma path needs an sm_90 (Hopper) device";
    return {gpuErrorInvalidValue};
  }
  if (p.fp8_dtype != DType::kFloat8E4M3FN) {
    if (info) info->variant = "unsupported: Hopper computes fp8 as float8_e4m3fn only";
    return {gpuErrorInvalidValue};
  }
  const Plan plan = make_plan(p, traits.multiprocessors, resident_pair_clusters(traits.multiprocessors));
  if (plan.bytes > 0 && (p.workspace == nullptr || p.workspace_size < plan.bytes)) return {gpuErrorInvalidValue};
  auto stream = static_cast<cudaStream_t>(stream_handle);
  auto* ws = static_cast<uint8_t*>(p.workspace);

  const void* a = plan.pack_a ? ws + plan.a_offset : p.a;
  const void* b = plan.pack_b ? ws + plan.b_offset : p.b;
  if (plan.pack_a || plan.pack_b) {  // one launch transposes both operands into the workspace
    Fp8PackJob jobs[2];
    int count = 0;
    if (plan.pack_a)
      jobs[count++] = {ws + plan.a_offset, static_cast<const uint8_t*>(p.a), p.m, p.k, p.a_stride_m, p.a_stride_k};
    if (plan.pack_b)
      jobs[count++] = {ws + plan.b_offset, static_cast<const uint8_t*>(p.b), p.n, p.k, p.b_stride_n, p.b_stride_k};
    if (const LaunchStatus s = launch_pack_fp8_operands(jobs, count, stream); !s.ok()) return s;
  }
  if (plan.pack_a_scale) {
    auto* scales = reinterpret_cast<float*>(ws + plan.a_scale_offset);
    if (const LaunchStatus s = launch_pack_row_scales(scales, p.a_scale, p.m, plan.k_blocks, p.a_scale_stride_m,
                                                      p.a_scale_stride_kb, plan.a_scale_rows, stream);
        !s.ok())
      return s;
  }
  const int64_t a_row = plan.pack_a || p.m == 1 ? p.k : p.a_stride_m;
  const int64_t b_row = plan.pack_b ? p.k : p.b_stride_n;
  CUtensorMap map_a, map_b;
  // Boxes: a CTA's part of its tile (half of the shared operand's tile in a cluster).
  const uint32_t a_box = plan.block_m / plan.cluster_n, b_box = plan.block_n / plan.cluster_m;
  if (const gpuError_t e = sm90::encode_tensor_map_2d_u8(&map_a, a, p.m, p.k, a_row, a_box, kBlockK); e)
    return {e};
  if (const gpuError_t e = sm90::encode_tensor_map_2d_u8(&map_b, b, p.n, p.k, b_row, b_box, kBlockK); e)
    return {e};

  KernelArgs args;
  if (plan.pack_a_scale) {
    args.a_scale = reinterpret_cast<const float*>(ws + plan.a_scale_offset);
    args.a_scale_stride_m = 1;
    args.a_scale_stride_kb = plan.a_scale_rows;
  } else {
    args.a_scale = p.a_scale;
    args.a_scale_stride_m = p.a_scale_stride_m;
    args.a_scale_stride_kb = p.a_scale_stride_kb;
  }
  args.a_scale_columns_aligned = scale_columns_aligned(args.a_scale, args.a_scale_stride_m, args.a_scale_stride_kb);
  args.b_scale = p.b_scale;
  args.b_scale_stride_nb = p.b_scale_stride_nb;
  args.b_scale_stride_kb = p.b_scale_stride_kb;
  args.m = static_cast<int>(p.m);
  args.n = static_cast<int>(p.n);
  args.b_rows = static_cast<const uint8_t*>(b);
  args.b_row_stride = b_row;
  args.scheduler = {plan.sched_tiles_m, plan.sched_tiles_n, plan.k_blocks, plan.split_k};
  if (plan.stream_k) {
    args.scheduler.stream_k_ctas = plan.grid / (plan.cluster_m * plan.cluster_n);
    args.scheduler.whole_tiles = plan.whole_tiles;
    args.stream_k_partials = reinterpret_cast<float*>(ws + plan.partials_offset);
    args.stream_k_flags = reinterpret_cast<int*>(ws + plan.flags_offset);
    if (const gpuError_t e = cudaMemsetAsync(args.stream_k_flags, 0, stream_k_flag_bytes(plan), stream); e) return {e};
  }
  gpuError_t err = gpuSuccess;
  // The cluster split stores the output itself; where the device cannot hold its clusters at
  // once, the same units run with fp32 partials and the second kernel.
  const auto store_output = [&](const Plan& run) {
    args.out = p.out;
    args.out_stride_m = p.out_stride_m;
    const size_t out_bytes = p.out_dtype == DType::kFloat32 ? 4 : 2;
    args.paired_stores = p.out_stride_m % 2 == 0 && reinterpret_cast<uintptr_t>(p.out) % (2 * out_bytes) == 0;
    args.vector_stores = (p.out_stride_m * out_bytes) % 16 == 0 && reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
    return with_out_type(p.out_dtype, [&](auto out_type) {
      return launch_typed<decltype(out_type)>(run, map_a, map_b, args, stream);
    });
  };
  bool cluster_split = false;
  if (plan.swap_cluster_split) {
    err = store_output(plan);
    cluster_split = err != gpuErrorNoVariant;
    if (cluster_split && err != gpuSuccess) return {err};
  }
  Plan run = plan;
  run.swap_cluster_split = false;
  if (!cluster_split && plan.split_k > 1) {
    args.out = ws + plan.partials_offset;
    args.out_stride_m = p.n;
    args.out_stride_split = p.m * p.n;
    args.paired_stores = true;
    args.vector_stores = true;  // dense partials, n % 64 == 0, workspace 256-byte aligned
    if (const gpuError_t e = launch_typed<float>(run, map_a, map_b, args, stream); e != gpuSuccess) return {e};
  } else if (!cluster_split) {
    if (const gpuError_t e = store_output(run); e != gpuSuccess) return {e};
  }
  if (plan.split_k > 1 && !cluster_split) {
    const auto* partials = reinterpret_cast<const float*>(ws + plan.partials_offset);
    const int64_t quads = p.m * p.n / 4;
    const int grid = static_cast<int>(std::min<int64_t>((quads + 255) / 256, int64_t(traits.multiprocessors) * 8));
    const gpuError_t e = with_out_type(p.out_dtype, [&](auto out_type) {
      using OutT = decltype(out_type);
      return launch_dependent(reduce_splits_kernel<OutT>, grid, 256, 0, stream, static_cast<OutT*>(p.out), partials,
                              p.m, p.n, p.out_stride_m, plan.split_k);
    });
    if (e != gpuSuccess) return {e};
  }
  if (info) {
    info->variant = plan.swap_tokens ? "wgmma_sm90_decode" : "wgmma_sm90";
    info->block_m = plan.block_m;
    info->block_n = plan.swap_tokens ? kBlockN : plan.block_n;
    info->block_k = kBlockK;
    info->stages = plan.stages;
    info->stage_k_blocks = plan.swap_tokens ? swap_blocks(plan.swap_tokens, plan.swap_wide) : 1;
    info->split_k = plan.split_k;
    info->cluster_split = cluster_split;
    info->stream_k = plan.stream_k;
    info->cluster_m = plan.cluster_m;
    info->cluster_n = plan.cluster_n;
    info->grid = plan.grid;
    info->transposed_a = plan.pack_a;
    info->transposed_b = plan.pack_b;
  }
  return {};
}

#else  // HIP builds have no Hopper path.

bool fp8_gemm_sm90_supports_current_device() { return false; }
size_t fp8_gemm_workspace_bytes_sm90(const Fp8GemmParams&) { return 0; }
LaunchStatus launch_fp8_gemm_sm90(const Fp8GemmParams&, StreamHandle, Fp8GemmLaunchInfo* info) {
  if (info) info->variant = "unsupported: this build has no Hopper path";
  return {gpuErrorInvalidValue};
}

#endif

}  // namespace flashhip::kernels
