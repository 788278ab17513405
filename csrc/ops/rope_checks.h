// Argument checks and stride helpers the rope family's op wrappers share (rope.cpp,
// rope_quant.cpp). Each failure is a RuntimeError naming the op and the argument.
#pragma once

#include <ATen/ATen.h>

namespace flashhip::ops {

void check_innermost_contiguous(const char* op, const char* arg, const at::Tensor& t);

// int32/int64 [nnz] on ref's device, nnz = ref.size(0).
void check_positions(const char* op, const char* arg, const at::Tensor& positions, const char* ref_arg,
                     const at::Tensor& ref);

// The fp32 cos|sin cache [max_positions, rotary_dim] (rotary_dim positive and even, innermost
// contiguous) on ref's device; returns rotary_dim. How it must relate to the heads is the op's.
int64_t check_cos_sin_cache(const char* op, const at::Tensor& cos_sin_cache, const at::Tensor& ref);

// Every position must name a row of the cache. Read on the host, so CPU tensors only: on a GPU
// the kernels skip such tokens instead (rope.h).
void check_positions_in_cache(const char* op, const char* arg, const at::Tensor& positions,
                              const at::Tensor& cos_sin_cache);

// The element stride of dimension d, or 0 where the dimension has one element (any stride is
// valid there, and 0 keeps it from defeating the vector path).
inline int64_t stride_of(const at::Tensor& t, int64_t d) { return t.size(d) == 1 ? 0 : t.stride(d); }

}  // namespace flashhip::ops
