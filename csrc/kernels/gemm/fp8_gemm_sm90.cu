// fp8_gemm on Hopper (sm_90a): the launch plan (tile shape, split-K, operand packing), the
// tensor maps, and the split-K reduction (operands are packed by operand_pack.cu).
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

constexpr size_t kWorkspaceAlign = 256;
// Wide decode stages measured 1-9% faster on 7 of 8 decode shapes (H200, device check at 6b2bd73;
// slower only at 8x7168x2048, 10.29 vs 9.95 us).
constexpr bool kDecodeWideByDefault = true;
size_t align_up(size_t x) { return (x + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

// TMA reads an operand in place when its rows are K-contiguous and 16-byte aligned; otherwise
// (the M/N-contiguous layout, odd row strides) it is first packed into the workspace.
bool tma_readable(const void* base, int64_t rows, int64_t stride_row, int64_t stride_k) {
  if (rows > 1 && stride_k != 1) return false;
  const int64_t row_stride = rows > 1 ? stride_row : 16;
  return row_stride % 16 == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}

// Decode ring: one K block a stage, as many stages as fit in 227 KB (up to 12); or "wide" stages
// of several K blocks, so that each weight row is requested 256-512 contiguous bytes at a time.
constexpr int swap_blocks(int tokens, bool wide) { return !wide ? 1 : tokens <= 16 ? 4 : 2; }
constexpr int swap_stages(int tokens, bool wide) {
  return !wide ? (tokens <= 16 ? 12 : tokens <= 32 ? 11 : 9) : (tokens <= 16 ? 3 : tokens <= 32 ? 5 : 4);
}

struct Plan {
  int block_m = 128, stages = 6, split_k = 1;
  int swap_tokens = 0;  // > 0: the decode kernel, tokens per tile (block_m is then the token tile)
  bool swap_wide = false;  // decode kernel with several K blocks a stage
  bool stream_k = false;  // the main kernel with stream-K (tile_scheduler.cuh)
  int whole_tiles = 0;    // stream-K: tiles done whole first
  int tiles_m = 0, tiles_n = 0, k_blocks = 0, grid = 0;
  bool pack_a = false, pack_b = false;
  size_t a_offset = 0, b_offset = 0, partials_offset = 0, flags_offset = 0, bytes = 0;
};

// The heuristic, by shape class:
// - block_m: 64 rows when M <= 64 (decode: the tile's zero rows cost tensor time we have spare,
//   never bytes); else 128 or 256 rows (two consumer warpgroups share each B tile; at 256 each
//   takes two 64-row subtiles), whichever has the smaller estimated time below.
// - split-K (128-row tiles only): when the output tiles are fewer than the SMs, the K blocks of
//   each tile may be split among s CTAs.
// The estimate is the busiest SM's time, waves * (K blocks per unit + 1 for the epilogue) *
// t_block, plus for s > 1 the fp32 partials' round trip through memory (s * M * N * 8 bytes at
// ~5 TB/s, much of it in L2), which a second kernel sums. t_block, one 128-deep K block of a tile
// on one SM, is ~0.6 us for 128 rows (4.2 MFLOP at an SM's share of the ~900 TFLOP/s the kernel
// sustains; streaming its 16 KB of weights from HBM takes about as long), ~0.5 us for 64
// (weight-bound), and kTile256BlockUs for 256 (less shared-memory traffic per flop). At least 4
// K blocks per split.
// - stages: as many as fit in 227 KB of shared memory beside the epilogue tiles (main kernel: 6
//   for 128 rows with 16-bit out, 5 with fp32 out or partials, 8 for 64 rows, 4 for 256).
// 0.88 of two 128-row blocks: 256- against 128-row tiles forced on the full-wave benchmark shapes
// took 0.84-0.92 of the time (H200, device check, random inputs).
constexpr double kTile256BlockUs = 1.05;
// - stream-K (main kernel, no split-K, tile_scheduler.cuh), when its estimate is below
//   kStreamKMargin of the best above: with t tiles on s SMs, (t / s - 1) whole waves of whole
//   tiles (none when t < 2s), then the remaining 1-2 waves' K blocks cut evenly among the s CTAs.
//   Its estimate: the whole waves, the CTA's share of the shared K blocks plus one for the
//   epilogue and kStreamKFixupBlocks for the owner's wait and the partials' round trip, and
//   kStreamKExtraUs for the flags' memset and the overlap with the previous kernel it costs.
//   Measured (H200, device check and benchmark, forced on and off): after whole waves a shared
//   K block costs about what a data-parallel one does (6144x4608x7168 at 256 rows: 382-390 us
//   against 428; 6144x1536x7168: 141 against 169), and with none at 256 rows and at least a
//   wave of tiles too (1024x4608x7168: 76-80 against 104). Left out, as measured slower than
//   the plans above: stream-K with no whole waves at 128 rows (a shared block took ~1.4x a
//   data-parallel one: 1024x{512,576,1536}x7168 took 22, 24, 43 us against split-K's 15, 17
//   and DP's 40; 6144x512x7168 61-67 against 61) or with 256-row tiles fewer than the SMs, and
//   shares under k_blocks / 5, which split a tile among more than ~5 CTAs (128x512x7168, a tile
//   over 33 CTAs: 46 us). kStreamKFixupBlocks = 3 keeps the short-K shapes where the fix-ups
//   did not pay (1024x7168x2304: 45-50 us against 40) on the data-parallel plan.
constexpr double kStreamKFixupBlocks = 3.0;
constexpr double kStreamKExtraUs = 4.0;
constexpr double kStreamKMargin = 0.97;
int stream_k_whole_tiles(int64_t tiles, int sms) { return tiles >= 2 * sms ? static_cast<int>((tiles / sms - 1) * sms) : 0; }
Plan make_plan(const Fp8GemmParams& p, int sms) {
  Plan plan;
  plan.block_m = p.force_block_m ? p.force_block_m : (p.m <= 64 ? 64 : 128);
  if (!p.force_block_m && p.m <= 64) {  // decode: weights as wgmma's M, tokens as its N
    plan.swap_tokens = p.m <= 8 ? 8 : p.m <= 16 ? 16 : p.m <= 32 ? 32 : 64;
    plan.block_m = plan.swap_tokens;
    plan.swap_wide = p.force_stage_k_blocks > 1 || (p.force_stage_k_blocks == 0 && kDecodeWideByDefault);
    plan.stages = swap_stages(plan.swap_tokens, plan.swap_wide);
  }
  plan.tiles_m = static_cast<int>((p.m + plan.block_m - 1) / plan.block_m);
  plan.tiles_n = static_cast<int>((p.n + kBlockN - 1) / kBlockN);
  plan.k_blocks = static_cast<int>(p.k / kBlockK);
  const int tiles = plan.tiles_m * plan.tiles_n;
  const auto estimate_us = [&](int64_t tile_count, int s, double block_us) {
    const int64_t waves = (tile_count * s + sms - 1) / sms;
    const double partial_us_per_split = static_cast<double>(p.m) * p.n * 8 / 5e6;
    return waves * ((plan.k_blocks + s - 1) / s + 1) * block_us + (s > 1 ? s * partial_us_per_split : 0);
  };
  double best_us = 1e300;
  if (p.force_split_k > 0) {
    plan.split_k = p.force_split_k;
  } else if (tiles < sms && plan.block_m != 256) {
    const double block_us = plan.swap_tokens || plan.block_m == 64 ? 0.5 : 0.6;
    for (int s = 1; s <= std::max(1, plan.k_blocks / 4); ++s) {
      const double us = estimate_us(tiles, s, block_us);
      if (us < best_us) best_us = us, plan.split_k = s;
    }
  } else {
    best_us = estimate_us(tiles, 1, plan.block_m == 64 ? 0.5 : 0.6);
  }
  // 256-row tiles: 16-bit outputs only (fp32 would leave the ring 3 stages), no split.
  const bool out16 = p.out_dtype != DType::kFloat32;
  const bool may_256 = !p.force_block_m && plan.block_m == 128 && out16 && p.force_split_k <= 1 && p.m > 128;
  const int64_t tiles256 = ((p.m + 255) / 256) * int64_t(plan.tiles_n);
  if (may_256) {
    const double us = estimate_us(tiles256, 1, kTile256BlockUs);
    if (us < best_us) {
      best_us = us;
      plan.block_m = 256, plan.split_k = 1;
      plan.tiles_m = static_cast<int>((p.m + 255) / 256);
    }
  }
  // Stream-K, for the tile shapes allowed here (the 128/256 choice is made again with it);
  // 1e300 where the rules above leave it out.
  const auto stream_k_us = [&](int64_t tile_count, int block_m, double block_us) {
    const int64_t whole = stream_k_whole_tiles(tile_count, sms);
    const int64_t share = ((tile_count - whole) * plan.k_blocks + sms - 1) / sms;
    if (p.force_stream_k <= 0 && (share * 5 < plan.k_blocks || (whole == 0 && (block_m != 256 || tile_count < sms))))
      return 1e300;
    return (whole / sms) * (plan.k_blocks + 1) * block_us +
           (static_cast<double>(share) + 1 + kStreamKFixupBlocks) * block_us + kStreamKExtraUs;
  };
  if (!plan.swap_tokens && p.force_split_k <= 1 && p.force_stream_k >= 0) {
    const int bm_now = plan.block_m;
    const double block_us = bm_now == 256 ? kTile256BlockUs : bm_now == 64 ? 0.5 : 0.6;
    double sk_best = stream_k_us(int64_t(plan.tiles_m) * plan.tiles_n, bm_now, block_us);
    int sk_block_m = bm_now;
    if (may_256 || (bm_now == 256 && !p.force_block_m)) {  // either tile height, by the estimate
      const int64_t tiles128 = ((p.m + 127) / 128) * int64_t(plan.tiles_n);
      const double us128 = stream_k_us(tiles128, 128, 0.6), us256 = stream_k_us(tiles256, 256, kTile256BlockUs);
      sk_best = std::min(us128, us256), sk_block_m = us256 < us128 ? 256 : 128;
    }
    if (p.force_stream_k > 0 || sk_best < kStreamKMargin * best_us) {
      plan.stream_k = true, plan.split_k = 1, plan.block_m = sk_block_m;
      plan.tiles_m = static_cast<int>((p.m + sk_block_m - 1) / sk_block_m);
    }
  }
  plan.split_k = std::max(1, std::min(plan.split_k, plan.k_blocks));
  if (!plan.swap_tokens) {  // the main kernel's ring shares shared memory with its epilogue tiles
    const int out_bytes = plan.split_k > 1 || p.out_dtype == DType::kFloat32 ? 4 : 2;
    plan.stages = main_loop_stages(plan.block_m, out_bytes);
  }
  plan.grid = std::min(plan.tiles_m * plan.tiles_n * plan.split_k, sms);
  if (plan.stream_k) {  // every CTA needs at least one shared K block
    const int tiles = plan.tiles_m * plan.tiles_n;
    plan.whole_tiles = stream_k_whole_tiles(tiles, sms);
    plan.grid = static_cast<int>(std::min<int64_t>(sms, int64_t(tiles - plan.whole_tiles) * plan.k_blocks));
    if (plan.whole_tiles % plan.grid) plan.whole_tiles = 0;  // (grid < sms only when tiles < sms)
  }
  plan.pack_a = !tma_readable(p.a, p.m, p.a_stride_m, p.a_stride_k);
  plan.pack_b = !tma_readable(p.b, p.n, p.b_stride_n, p.b_stride_k);
  size_t bytes = 0;
  if (plan.pack_a) plan.a_offset = bytes, bytes = align_up(bytes + static_cast<size_t>(p.m * p.k));
  if (plan.pack_b) plan.b_offset = bytes, bytes = align_up(bytes + static_cast<size_t>(p.n * p.k));
  if (plan.split_k > 1) {
    plan.partials_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.split_k) * p.m * p.n * sizeof(float));
  }
  if (plan.stream_k) {  // one partial tile and one flag per consumer warpgroup of each CTA
    plan.partials_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.grid) * plan.block_m * kBlockN * sizeof(float));
    plan.flags_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.grid) * main_loop_consumers(plan.block_m) * sizeof(int));
  }
  plan.bytes = bytes;
  return plan;
}

// ---- split-K: out = sum over splits of the fp32 partials ----
template <typename OutT>
__global__ void FH_LAUNCH_BOUNDS(256) reduce_splits_kernel(
    OutT* __restrict__ out,              // [m, n] at out_stride_m
    const float* __restrict__ partials,  // [splits, m, n] dense
    int64_t m, int64_t n, int64_t out_stride_m, int splits) {
  grid_dependency_wait();  // the main kernel's partials are complete
  const int64_t quads = m * n / 4;  // n % 64 == 0: a row is whole quads
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads; q += int64_t(gridDim.x) * blockDim.x) {
    float4 sum = reinterpret_cast<const float4*>(partials)[q];
    for (int s = 1; s < splits; ++s) {
      const float4 v = reinterpret_cast<const float4*>(partials + s * m * n)[q];
      sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
    }
    const int64_t row = q * 4 / n, col = q * 4 % n;
    OutT* o = out + row * out_stride_m + col;
    o[0] = from_float<OutT>(sum.x), o[1] = from_float<OutT>(sum.y);
    o[2] = from_float<OutT>(sum.z), o[3] = from_float<OutT>(sum.w);
  }
}

// Raises a kernel's dynamic shared-memory limit, once per device: the attribute belongs to the
// kernel as loaded on each device. `done` is the calling launcher's own (one per kernel).
constexpr int kMaxDevices = 64;
using OptInFlags = std::atomic<bool>[kMaxDevices];
template <typename Kernel>
gpuError_t opt_in_smem(Kernel kernel, int bytes, OptInFlags& done) {
  int device = 0;
  FH_RETURN_IF_ERROR(cudaGetDevice(&device));
  if (device >= 0 && device < kMaxDevices && done[device].load(std::memory_order_acquire)) return gpuSuccess;
  FH_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (device >= 0 && device < kMaxDevices) done[device].store(true, std::memory_order_release);
  return gpuSuccess;
}

template <int kBlockM, typename OutT>
gpuError_t launch_main_loop(const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args, int grid,
                            cudaStream_t stream) {
  constexpr int kStages = main_loop_stages(kBlockM, sizeof(OutT));
  using Cfg = Config<kBlockM, kStages, OutT>;
  auto* kernel = fp8_gemm_wgmma_kernel<kBlockM, kStages, OutT>;
  static OptInFlags opted_in;
  FH_RETURN_IF_ERROR(opt_in_smem(kernel, Cfg::kSmemBytes, opted_in));
  return launch_dependent(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, map_a, map_b, args);
}

template <int kTokens, bool kWide, typename OutT>
gpuError_t launch_swap(const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args, int grid,
                       cudaStream_t stream) {
  constexpr int kStages = swap_stages(kTokens, kWide), kBlocks = swap_blocks(kTokens, kWide);
  using Cfg = SwapConfig<kTokens, kStages, kBlocks>;
  auto* kernel = fp8_gemm_wgmma_swap_kernel<kTokens, kStages, kBlocks, OutT>;
  static OptInFlags opted_in;
  FH_RETURN_IF_ERROR(opt_in_smem(kernel, Cfg::kSmemBytes, opted_in));
  return launch_dependent(kernel, grid, Cfg::kThreads, Cfg::kSmemBytes, stream, map_a, map_b, args);
}

template <typename OutT>
gpuError_t launch_typed(const Plan& plan, const CUtensorMap& map_a, const CUtensorMap& map_b, const KernelArgs& args,
                        cudaStream_t stream) {
  const auto swap = [&](auto tokens) {
    constexpr int kTokens = decltype(tokens)::value;
    return plan.swap_wide ? launch_swap<kTokens, true, OutT>(map_a, map_b, args, plan.grid, stream)
                          : launch_swap<kTokens, false, OutT>(map_a, map_b, args, plan.grid, stream);
  };
  switch (plan.swap_tokens) {
    case 0: break;
    case 8: return swap(std::integral_constant<int, 8>{});
    case 16: return swap(std::integral_constant<int, 16>{});
    case 32: return swap(std::integral_constant<int, 32>{});
    case 64: return swap(std::integral_constant<int, 64>{});
    default: return gpuErrorInvalidValue;
  }
  if (plan.block_m == 64) return launch_main_loop<64, OutT>(map_a, map_b, args, plan.grid, stream);
  if (plan.block_m == 128) return launch_main_loop<128, OutT>(map_a, map_b, args, plan.grid, stream);
  if constexpr (sizeof(OutT) == 2) {
    if (plan.block_m == 256) return launch_main_loop<256, OutT>(map_a, map_b, args, plan.grid, stream);
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
  return make_plan(p, traits.multiprocessors).bytes;
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
  const Plan plan = make_plan(p, traits.multiprocessors);
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
  const int64_t a_row = plan.pack_a || p.m == 1 ? p.k : p.a_stride_m;
  const int64_t b_row = plan.pack_b ? p.k : p.b_stride_n;
  CUtensorMap map_a, map_b;
  if (const gpuError_t e = sm90::encode_tensor_map_2d_u8(&map_a, a, p.m, p.k, a_row, plan.block_m, kBlockK); e)
    return {e};
  if (const gpuError_t e = sm90::encode_tensor_map_2d_u8(&map_b, b, p.n, p.k, b_row, kBlockN, kBlockK); e)
    return {e};

  KernelArgs args;
  args.a_scale = p.a_scale;
  args.a_scale_stride_m = p.a_scale_stride_m;
  args.a_scale_stride_kb = p.a_scale_stride_kb;
  args.b_scale = p.b_scale;
  args.b_scale_stride_nb = p.b_scale_stride_nb;
  args.b_scale_stride_kb = p.b_scale_stride_kb;
  args.m = static_cast<int>(p.m);
  args.n = static_cast<int>(p.n);
  args.scheduler = {plan.tiles_m, plan.tiles_n, plan.k_blocks, plan.split_k};
  if (plan.stream_k) {
    args.scheduler.stream_k_ctas = plan.grid;
    args.scheduler.whole_tiles = plan.whole_tiles;
    args.stream_k_partials = reinterpret_cast<float*>(ws + plan.partials_offset);
    args.stream_k_flags = reinterpret_cast<int*>(ws + plan.flags_offset);
    const size_t flag_bytes = static_cast<size_t>(plan.grid) * main_loop_consumers(plan.block_m) * sizeof(int);
    if (const gpuError_t e = cudaMemsetAsync(args.stream_k_flags, 0, flag_bytes, stream); e) return {e};
  }
  gpuError_t err = gpuSuccess;
  if (plan.split_k > 1) {
    args.out = ws + plan.partials_offset;
    args.out_stride_m = p.n;
    args.out_stride_split = p.m * p.n;
    args.paired_stores = true;
    args.vector_stores = true;  // dense partials, n % 64 == 0, workspace 256-byte aligned
    err = launch_typed<float>(plan, map_a, map_b, args, stream);
  } else {
    args.out = p.out;
    args.out_stride_m = p.out_stride_m;
    const size_t out_bytes = p.out_dtype == DType::kFloat32 ? 4 : 2;
    args.paired_stores = p.out_stride_m % 2 == 0 && reinterpret_cast<uintptr_t>(p.out) % (2 * out_bytes) == 0;
    args.vector_stores = (p.out_stride_m * out_bytes) % 16 == 0 && reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
    err = with_out_type(p.out_dtype, [&](auto out_type) {
      return launch_typed<decltype(out_type)>(plan, map_a, map_b, args, stream);
    });
  }
  if (err != gpuSuccess) return {err};
  if (plan.split_k > 1) {
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
    info->block_n = kBlockN;
    info->block_k = kBlockK;
    info->stages = plan.stages;
    info->stage_k_blocks = plan.swap_tokens ? swap_blocks(plan.swap_tokens, plan.swap_wide) : 1;
    info->split_k = plan.split_k;
    info->stream_k = plan.stream_k;
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
