// Rotary frequencies computed from the pair index rather than read from a cos|sin cache, shared
// by the CPU implementation and the GPU kernel so both turn a position by the same fp32 angle.
// Torch-free; host and device.
#pragma once

#include <cmath>

#include "flashhip/platform/macros.h"

namespace flashhip::kernels {

// Pair i of a head turns by position * inv_freq(i), with
//   base(i) = rope_theta^(-2i / rotary_dim) and inv_freq(i) = base(i) / rope_scale
// (dividing the frequency equals dividing the position). Llama-3.1 keeps a share
// keep(i) = clamp(base(i) * smooth_a + smooth_b, 0, 1) of the unscaled frequency:
//   inv_freq(i) = (1 - keep) * base / rope_scale + keep * base,
// where smooth_a = old_context_len / (2 pi (high_freq_factor - low_freq_factor)) and
// smooth_b = -low_freq_factor / (high_freq_factor - low_freq_factor): 0 for wavelengths longer
// than old_context_len / low_freq_factor, 1 for those shorter than old_context_len / high_freq_factor.
struct RopeFrequencies {
  float rope_theta = 1e4f;
  float rcp_scale = 1.0f;  // 1 / rope_scale
  bool llama31 = false;
  float smooth_a = 0.0f;
  float smooth_b = 0.0f;
};

FH_HOST_DEVICE FH_INLINE float rope_inv_freq(const RopeFrequencies& f, int pair, int rotary_dim) {
  // Precise powf: the error of base multiplies the position, which reaches 1e5 and more.
  const float base = powf(f.rope_theta, -2.0f * static_cast<float>(pair) / static_cast<float>(rotary_dim));
  const float scaled = base * f.rcp_scale;
  if (!f.llama31) return scaled;
  const float keep = fminf(fmaxf(base * f.smooth_a + f.smooth_b, 0.0f), 1.0f);
  return (1.0f - keep) * scaled + keep * base;
}

}  // namespace flashhip::kernels
