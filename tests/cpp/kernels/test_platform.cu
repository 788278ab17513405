// Torch-free device tests of the platform primitives: lane ids on 2-D blocks, ballots, wave
// reductions and the wave algorithms of kernels/common. Built into flashhip_platform_tests with
// the GPU backend only (scripts/gpu_run.sh's cpp step runs it); each test runs at the device's
// wave width.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "flashhip/kernels/common/wave_algorithms.cuh"
#include "flashhip/platform/arch.h"
#include "flashhip/platform/fp8_quotient.h"
#include "flashhip/platform/runtime.h"
#include "flashhip/platform/wave.h"

namespace flashhip {
namespace {

// A device buffer of n T's, copied back by host().
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    EXPECT_EQ(gpuMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)), gpuSuccess);
  }
  ~DeviceBuffer() { (void)gpuFree(ptr); }
  std::vector<T> host() const {
    std::vector<T> out(n);
    EXPECT_EQ(gpuDeviceSynchronize(), gpuSuccess);
    EXPECT_EQ(gpuMemcpyToHost(out.data(), ptr, n * sizeof(T)), gpuSuccess);
    return out;
  }
};

// A block whose x extent is not a multiple of any wave width: rows share waves.
const dim3 kBlock2d(24, 8);
constexpr int kThreads2d = 24 * 8;

template <int WAVE>
__global__ void lane_ids(int* lane, int* linear) {
  const int t = static_cast<int>(linear_thread_id());
  lane[t] = lane_id<WAVE>();
  linear[t] = t;
}

template <int WAVE>
__global__ void ballots(uint64_t* mask) {
  const int t = static_cast<int>(linear_thread_id());
  const LaneMask<WAVE> m = ballot<WAVE>(lane_id<WAVE>() % 3 == 0);
  static_assert(sizeof(m) * 8 >= WAVE, "a lane mask holds every lane");
  mask[t] = m;
}

template <int WAVE>
__global__ void reductions(uint32_t* max_out, uint32_t* min_out, float* sum_out, int* owner_out) {
  const int t = static_cast<int>(linear_thread_id());
  const int lane = lane_id<WAVE>();
  const uint32_t value = static_cast<uint32_t>((lane * 7 + 3) % WAVE) + 100u * static_cast<uint32_t>(t / WAVE);
  max_out[t] = wave_max_u32<WAVE>(value);
  min_out[t] = wave_min_u32<WAVE>(value);
  sum_out[t] = group_reduce_sum<WAVE>(static_cast<float>(lane), 8);
  int owner = -1;
  (void)kernels::wave_max_u64<WAVE>(static_cast<uint64_t>(value % 5), &owner);
  owner_out[t] = owner;
}

template <typename F>
void for_device_wave(F&& f) {
  const gpuError_t err = dispatch_device_wave([&](const DeviceTraits& traits, auto wave) {
    f(traits, decltype(wave)::value, wave);
    return gpuSuccess;
  });
  ASSERT_EQ(err, gpuSuccess);
}

}  // namespace

TEST(Platform, LaneIdsFollowTheLinearThreadIdOn2dBlocks) {
  for_device_wave([](const DeviceTraits&, int wave, auto w) {
    DeviceBuffer<int> lane(kThreads2d), linear(kThreads2d);
    lane_ids<decltype(w)::value><<<1, kBlock2d>>>(lane.ptr, linear.ptr);
    ASSERT_EQ(gpuGetLastError(), gpuSuccess);
    const auto l = lane.host(), t = linear.host();
    for (int i = 0; i < kThreads2d; ++i) {
      EXPECT_EQ(t[i], i);
      EXPECT_EQ(l[i], i % wave) << "thread " << i;
    }
  });
}

TEST(Platform, BallotReturnsTheWavesLaneMask) {
  for_device_wave([](const DeviceTraits&, int wave, auto w) {
    DeviceBuffer<uint64_t> mask(kThreads2d);
    ballots<decltype(w)::value><<<1, kBlock2d>>>(mask.ptr);
    ASSERT_EQ(gpuGetLastError(), gpuSuccess);
    uint64_t want = 0;
    for (int lane = 0; lane < wave; lane += 3) want |= uint64_t{1} << lane;
    const auto m = mask.host();
    for (int i = 0; i < kThreads2d; ++i) EXPECT_EQ(m[i], want) << "thread " << i;
  });
}

TEST(Platform, WaveReductions) {
  for_device_wave([](const DeviceTraits&, int wave, auto w) {
    constexpr int kThreads = 256;
    DeviceBuffer<uint32_t> max_out(kThreads), min_out(kThreads);
    DeviceBuffer<float> sum_out(kThreads);
    DeviceBuffer<int> owner_out(kThreads);
    reductions<decltype(w)::value><<<1, kThreads>>>(max_out.ptr, min_out.ptr, sum_out.ptr, owner_out.ptr);
    ASSERT_EQ(gpuGetLastError(), gpuSuccess);
    const auto mx = max_out.host(), mn = min_out.host();
    const auto sum = sum_out.host();
    const auto owner = owner_out.host();
    for (int t = 0; t < kThreads; ++t) {
      const int first = t / wave * wave;
      uint32_t want_max = 0, want_min = ~0u, want_key = 0;
      int want_owner = -1;
      for (int lane = 0; lane < wave; ++lane) {
        const uint32_t v = static_cast<uint32_t>((lane * 7 + 3) % wave) + 100u * static_cast<uint32_t>(t / wave);
        want_max = v > want_max ? v : want_max;
        want_min = v < want_min ? v : want_min;
        if (want_owner < 0 || v % 5 > want_key) want_key = v % 5, want_owner = lane;
      }
      EXPECT_EQ(mx[t], want_max) << "thread " << t;
      EXPECT_EQ(mn[t], want_min) << "thread " << t;
      const int group_first = (t - first) / 8 * 8;
      EXPECT_FLOAT_EQ(sum[t], static_cast<float>(8 * group_first + 28)) << "thread " << t;
      EXPECT_EQ(owner[t], want_owner) << "thread " << t;
    }
  });
}

// Fp8Quotient's device spelling (the bracket's multiplies, the paired conversions, the corrected
// quotient) against the device's division and conversion, four elements (one word) at a time,
// with the divisor's mode taken as the kernels take it.
template <typename T>
__global__ void fp8_quotient_mismatches(const float* y /* [n] */, const float* d /* [n / 4] */, int n,
                                        int* mismatches) {
  for (int w = blockIdx.x * blockDim.x + threadIdx.x; w < n / 4; w += gridDim.x * blockDim.x) {
    const Fp8Quotient quotient(d[w]);
    auto value = [&](int j) { return y[4 * w + j]; };
    uint32_t got[1];
    if (quotient.by_bracket()) {
      quotient.codes<T, true, 4>(value, got);
    } else {
      quotient.codes<T, false, 4>(value, got);
    }
    float q[4];
    for (int j = 0; j < 4; ++j) q[j] = y[4 * w + j] / d[w];
    uint32_t want[1];
    convert_floats_to_words<T, 4>(q, want);
    if (got[0] != want[0]) atomicAdd(mismatches, 1);
  }
}

template <typename T>
void expect_fp8_quotients_match() {
  constexpr int n = 1 << 22;
  std::vector<float> y(n), d(n / 4);
  uint64_t state = 88172645463325252ull;
  auto next = [&] { state ^= state << 13, state ^= state >> 7, state ^= state << 17; return state; };
  for (int w = 0; w < n / 4; ++w) {
    const uint64_t r = next();
    d[w] = std::ldexp(1.0f + float(r & 0x7fffff) * 0x1p-23f, int(r >> 52 & 127) - 64) * ((r >> 63) ? -1.0f : 1.0f);
    for (int j = 0; j < 4; ++j) {
      const uint64_t s = next();
      // Every other word: dividends whose quotient sits within a few ulps of an fp8 value or
      // midpoint (the bracket's undecided cases); otherwise spread over the code range.
      const float v = std::ldexp(1.0f + float(s >> 40 & 15) * 0x1p-4f, int(s >> 44 & 31) - 14);
      const float spread = std::ldexp(1.0f + float(s & 0x7fffff) * 0x1p-23f, int(s >> 23 & 31) - 20);
      float near = v * d[w];
      uint32_t bits;
      memcpy(&bits, &near, sizeof bits);
      bits += static_cast<uint32_t>(int(s >> 56 & 7) - 3);
      memcpy(&near, &bits, sizeof bits);
      y[4 * w + j] = (w % 2 ? spread * d[w] : near) * ((s >> 63) ? -1.0f : 1.0f);
    }
  }
  d[0] = 0.0f, d[1] = 1e-40f, d[2] = 0x1p126f;  // outside the bracket's range: the division
  d[3] = std::numeric_limits<float>::infinity(), d[4] = -d[3];  // the bracket, whose ends are y * 0
  y[12] = d[3], y[13] = std::numeric_limits<float>::quiet_NaN(), y[17] = -d[3];
  DeviceBuffer<float> dy(n), dd(n / 4);
  DeviceBuffer<int> bad(1);
  ASSERT_EQ(gpuMemcpyToDevice(dy.ptr, y.data(), n * sizeof(float)), gpuSuccess);
  ASSERT_EQ(gpuMemcpyToDevice(dd.ptr, d.data(), n / 4 * sizeof(float)), gpuSuccess);
  const int zero = 0;
  ASSERT_EQ(gpuMemcpyToDevice(bad.ptr, &zero, sizeof(int)), gpuSuccess);
  fp8_quotient_mismatches<T><<<256, 256>>>(dy.ptr, dd.ptr, n, bad.ptr);
  EXPECT_EQ(bad.host()[0], 0);
}

TEST(Platform, Fp8QuotientMatchesTheDivisionOnTheDeviceE4m3fn) { expect_fp8_quotients_match<fp8_e4m3fn_t>(); }
TEST(Platform, Fp8QuotientMatchesTheDivisionOnTheDeviceE5m2) { expect_fp8_quotients_match<fp8_e5m2_t>(); }

TEST(Platform, DeviceTraitsAreFilled) {
  DeviceTraits t;
  ASSERT_EQ(current_device_traits(&t), gpuSuccess);
  EXPECT_GT(t.multiprocessors, 0);
  EXPECT_GT(t.max_threads_per_multiprocessor, 0);
  EXPECT_GT(t.smem_bytes_per_block, 0);
  EXPECT_GT(t.dram_bytes_per_s, 1e11);  // every supported device has more than 100 GB/s
  EXPECT_NE(t.arch, ArchFamily::kUnknown);
  EXPECT_NE(t.arch_name[0], '\0');
}

}  // namespace flashhip
