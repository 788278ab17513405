// Torch-free device check of launch_pack_fp8_operands (the fp8 GEMM's operand transpose): random
// bytes in the M/N-contiguous layout and a few odd ones, one or two jobs a launch, against a
// host-side transpose, with the bytes around each dst checked untouched; then the challenge's
// operand pairs timed with events (read + write bytes / time, beside a same-size device copy).
// Host code only (the kernel comes with the library's objects). From a kernel check's main():
//   failures += operand_pack_check::run_pack_checks(/*timing=*/true);
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "flashhip/kernels/gemm/operand_pack.h"

namespace operand_pack_check {

// One job: element (r, c) at src + src_offset + r * stride_row + c * stride_col; dst dense at
// dst + dst_offset (offsets in bytes, to break the 16-byte alignment on purpose).
struct JobSpec {
  int64_t rows, cols, stride_row, stride_col;
  int64_t src_offset = 0, dst_offset = 0;
};

// The GEMM's M/N-contiguous operand: memory [cols][rows + pad].
inline JobSpec mn_major(int64_t rows, int64_t cols, int64_t pad = 0) { return {rows, cols, 1, rows + pad}; }

inline bool cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) std::printf("FAIL pack: %s: %s\n", what, cudaGetErrorString(e));
  return e == cudaSuccess;
}

inline size_t src_bytes(const JobSpec& j) {
  return static_cast<size_t>(j.src_offset + (j.rows - 1) * j.stride_row + (j.cols - 1) * j.stride_col + 1);
}

constexpr int kGuard = 256;        // poisoned bytes after each dst
constexpr uint8_t kPoison = 0xcd;

// Packs `jobs` (1 or 2) in one launch and compares with the host transpose. True when all match.
inline bool check_jobs(const std::vector<JobSpec>& jobs, const char* what, std::mt19937& rng) {
  const int n = static_cast<int>(jobs.size());
  std::vector<std::vector<uint8_t>> src(n);
  std::vector<uint8_t*> d_src(n, nullptr), d_dst(n, nullptr);
  flashhip::kernels::Fp8PackJob pj[2];
  bool ok = true;
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < n && ok; ++i) {
    const JobSpec& j = jobs[i];
    src[i].resize(src_bytes(j));
    for (auto& b : src[i]) b = static_cast<uint8_t>(byte(rng));
    const size_t dst_bytes = static_cast<size_t>(j.dst_offset + j.rows * j.cols + kGuard);
    ok = cuda_ok(cudaMalloc(&d_src[i], src[i].size()), "cudaMalloc") &&
         cuda_ok(cudaMalloc(&d_dst[i], dst_bytes), "cudaMalloc") &&
         cuda_ok(cudaMemcpy(d_src[i], src[i].data(), src[i].size(), cudaMemcpyHostToDevice), "cudaMemcpy") &&
         cuda_ok(cudaMemset(d_dst[i], kPoison, dst_bytes), "cudaMemset");
    pj[i] = {d_dst[i] + j.dst_offset, d_src[i] + j.src_offset, j.rows, j.cols, j.stride_row, j.stride_col};
  }
  if (ok) {
    const flashhip::LaunchStatus st = flashhip::kernels::launch_pack_fp8_operands(pj, n, nullptr);
    ok = cuda_ok(static_cast<cudaError_t>(st.code), "launch_pack_fp8_operands") &&
         cuda_ok(cudaDeviceSynchronize(), "kernel");
  }
  size_t bad = 0, guard_bad = 0;
  for (int i = 0; i < n && ok; ++i) {
    const JobSpec& j = jobs[i];
    std::vector<uint8_t> got(static_cast<size_t>(j.dst_offset + j.rows * j.cols + kGuard));
    ok = cuda_ok(cudaMemcpy(got.data(), d_dst[i], got.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (int64_t r = 0; ok && r < j.rows; ++r)
      for (int64_t c = 0; c < j.cols; ++c)
        bad += got[j.dst_offset + r * j.cols + c] != src[i][j.src_offset + r * j.stride_row + c * j.stride_col];
    for (int64_t k = 0; k < j.dst_offset; ++k) guard_bad += got[k] != kPoison;
    for (int k = 0; k < kGuard; ++k) guard_bad += got[j.dst_offset + j.rows * j.cols + k] != kPoison;
  }
  ok = ok && bad == 0 && guard_bad == 0;
  std::printf("%s pack %-34s", ok ? "PASS" : "FAIL", what);
  for (const JobSpec& j : jobs)
    std::printf(" [%lld x %lld at (%lld, %lld)%s]", static_cast<long long>(j.rows), static_cast<long long>(j.cols),
                static_cast<long long>(j.stride_row), static_cast<long long>(j.stride_col),
                j.src_offset % 16 || j.dst_offset % 16 ? " misaligned" : "");
  std::printf(" wrong=%zu outside_dst=%zu\n", bad, guard_bad);
  for (int i = 0; i < n; ++i) cudaFree(d_src[i]), cudaFree(d_dst[i]);
  return ok;
}

// Times one launch packing a and b (M/N-contiguous, dense), rotating over enough buffer sets that
// the working set is well past the L2; a device-to-device copy of the same bytes for scale.
inline bool time_pair(const JobSpec& a, const JobSpec& b) {
  const size_t bytes_a = static_cast<size_t>(a.rows * a.cols), bytes_b = static_cast<size_t>(b.rows * b.cols);
  const size_t bytes = bytes_a + bytes_b;  // read once, written once
  const int sets = static_cast<int>(std::max<size_t>(2, std::min<size_t>(8, (size_t(512) << 20) / (2 * bytes) + 1)));
  std::vector<uint8_t*> bufs;
  bool ok = true;
  auto alloc = [&](size_t n) {
    uint8_t* p = nullptr;
    ok = ok && cuda_ok(cudaMalloc(&p, n), "cudaMalloc") && cuda_ok(cudaMemset(p, 0x3c, n), "cudaMemset");
    bufs.push_back(p);
    return p;
  };
  std::vector<flashhip::kernels::Fp8PackJob> jobs;  // 2 a set
  for (int s = 0; s < sets; ++s) {
    uint8_t *sa = alloc(bytes_a), *sb = alloc(bytes_b), *da = alloc(bytes_a), *db = alloc(bytes_b);
    jobs.push_back({da, sa, a.rows, a.cols, a.stride_row, a.stride_col});
    jobs.push_back({db, sb, b.rows, b.cols, b.stride_row, b.stride_col});
  }
  cudaEvent_t e0, e1;
  ok = ok && cuda_ok(cudaEventCreate(&e0), "cudaEventCreate") && cuda_ok(cudaEventCreate(&e1), "cudaEventCreate");
  float pack_ms = 0, copy_ms = 0;
  const int iters = 50;
  if (ok) {
    for (int it = 0; it < 10 && ok; ++it)
      ok = cuda_ok(static_cast<cudaError_t>(
                       flashhip::kernels::launch_pack_fp8_operands(&jobs[2 * (it % sets)], 2, nullptr).code),
                   "launch_pack_fp8_operands");
    cudaEventRecord(e0);
    for (int it = 0; it < iters; ++it) flashhip::kernels::launch_pack_fp8_operands(&jobs[2 * (it % sets)], 2, nullptr);
    cudaEventRecord(e1);
    ok = ok && cuda_ok(cudaEventSynchronize(e1), "pack timing");
    cudaEventElapsedTime(&pack_ms, e0, e1);
    // The copy: each set's a+b sources (adjacent allocations are not contiguous, so copy a and b).
    for (int it = 0; it < 10; ++it) {
      const int s = it % sets;
      cudaMemcpyAsync(jobs[2 * s].dst, jobs[2 * s].src, bytes_a, cudaMemcpyDeviceToDevice);
      cudaMemcpyAsync(jobs[2 * s + 1].dst, jobs[2 * s + 1].src, bytes_b, cudaMemcpyDeviceToDevice);
    }
    cudaEventRecord(e0);
    for (int it = 0; it < iters; ++it) {
      const int s = it % sets;
      cudaMemcpyAsync(jobs[2 * s].dst, jobs[2 * s].src, bytes_a, cudaMemcpyDeviceToDevice);
      cudaMemcpyAsync(jobs[2 * s + 1].dst, jobs[2 * s + 1].src, bytes_b, cudaMemcpyDeviceToDevice);
    }
    cudaEventRecord(e1);
    ok = ok && cuda_ok(cudaEventSynchronize(e1), "copy timing");
    cudaEventElapsedTime(&copy_ms, e0, e1);
  }
  const double us = pack_ms * 1e3 / iters, copy_us = copy_ms * 1e3 / iters;
  std::printf("%s time pack %lld x %lld + %lld x %lld (one launch): %8.2f us %7.1f GB/s (read+write) | "
              "same-size copy %8.2f us %7.1f GB/s\n",
              ok ? "PASS" : "FAIL", static_cast<long long>(a.rows), static_cast<long long>(a.cols),
              static_cast<long long>(b.rows), static_cast<long long>(b.cols), us, 2.0 * bytes / us * 1e-3, copy_us,
              2.0 * bytes / copy_us * 1e-3);
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  for (uint8_t* p : bufs) cudaFree(p);
  return ok;
}

// Returns the number of failed checks.
inline int run_pack_checks(bool timing = true) {
  std::mt19937 rng(4321);
  int failures = 0;
  struct Case {
    const char* what;
    std::vector<JobSpec> jobs;
  };
  const std::vector<Case> cases = {
      {"fast 64x128", {mn_major(64, 128)}},
      {"fast 48x640 (partial row tile)", {mn_major(48, 640)}},
      {"fast A+B 1024x7168 + 7168x1536", {mn_major(1024, 7168), mn_major(7168, 1536)}},
      {"fast A+B 208x272 + 48x640 padded", {mn_major(208, 272), mn_major(48, 640, 16)}},
      {"fallback 100x384 (rows % 16)", {mn_major(100, 384)}},
      {"fast+fallback 48x640 + 100x384", {mn_major(48, 640), mn_major(100, 384)}},
      {"fallback+fast 100x384 + 64x128", {mn_major(100, 384), mn_major(64, 128)}},
      {"fast src and dst 16 bytes off 128", {{64, 128, 1, 80, 16, 0}, {64, 128, 1, 64, 0, 16}}},
      {"fallback misaligned src", {{64, 128, 1, 64, 1, 0}}},
      {"fallback misaligned dst", {{64, 128, 1, 64, 0, 8}}},
      {"fallback row stride 129 (K-major)", {{100, 128, 129, 1}}},
      {"fallback strides (3, 7)", {{37, 29, 3, 7}}},
      {"one empty job", {mn_major(0, 128), mn_major(64, 128)}},
  };
  for (const Case& c : cases) failures += !check_jobs(c.jobs, c.what, rng);
  if (timing) {
    failures += !time_pair(mn_major(1024, 7168), mn_major(1536, 7168));
    failures += !time_pair(mn_major(6144, 7168), mn_major(7168, 2304));
  }
  std::printf("pack checks: %d failure(s)\n", failures);
  return failures;
}

}  // namespace operand_pack_check
