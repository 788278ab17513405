// Argument checks shared by every op wrapper. Each failure is a RuntimeError (c10::Error) that
// names the op and the argument and says what was expected.
#pragma once

#include <initializer_list>

#include <ATen/ATen.h>

#include "op_support.h"

namespace flashhip::ops {

// A [..., hidden] tensor seen as `rows` rows of `hidden` contiguous elements.
struct RowView {
  int64_t rows = 0;
  int64_t hidden = 0;
  int64_t row_stride = 0;  // elements between consecutive rows
};

// CPU or GPU (the CUDA key, which ROCm torch uses too).
void check_device(const char* op, const char* arg, const at::Tensor& t);
void check_same_device(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref);
void check_dtype(const char* op, const char* arg, const at::Tensor& t, std::initializer_list<at::ScalarType> allowed);
void check_same_dtype(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg);
void check_same_shape(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg);
void check_shape(const char* op, const char* arg, const at::Tensor& t, at::IntArrayRef expected);
// An output may be the same tensor as an input (in place) but must not overlap it otherwise,
// and must not overlap itself.
void check_writable(const char* op, const char* arg, const at::Tensor& t);
void check_no_partial_overlap(const char* op, const char* arg, const at::Tensor& out, const at::Tensor& in);

void check_contiguous(const char* op, const char* arg, const at::Tensor& t);

// The leading dimensions must collapse to one row stride and the innermost must be contiguous.
RowView row_view(const char* op, const char* arg, const at::Tensor& t);

}  // namespace flashhip::ops
