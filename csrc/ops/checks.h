// Argument checks shared by every op wrapper. Each failure is a RuntimeError (c10::Error) that
// names the op and the argument and says what was expected.
#pragma once

#include <initializer_list>
#include <utility>

#include <ATen/ATen.h>

#include "op_support.h"

namespace flashhip::ops {

// A [..., hidden] tensor seen as `rows` rows of `hidden` contiguous elements.
struct RowView {
  int64_t rows = 0;
  int64_t hidden = 0;
  int64_t row_stride = 0;  // elements between consecutive rows
};

// The fp8 dtypes the quantising ops (norm quant, rope_quantize_fp8) write, saturating.
inline constexpr std::initializer_list<at::ScalarType> kFp8Dtypes = {at::kFloat8_e4m3fn, at::kFloat8_e4m3fnuz,
                                                                     at::kFloat8_e5m2};

// CPU or GPU (the CUDA key, which ROCm torch uses too).
void check_device(const char* op, const char* arg, const at::Tensor& t);
void check_same_device(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref);
void check_dtype(const char* op, const char* arg, const at::Tensor& t, std::initializer_list<at::ScalarType> allowed);
void check_same_dtype(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg);
void check_same_shape(const char* op, const char* arg, const at::Tensor& t, const at::Tensor& ref, const char* ref_arg);
void check_shape(const char* op, const char* arg, const at::Tensor& t, at::IntArrayRef expected);
// An output must not overlap itself (an expanded or self-overlapping view).
void check_writable(const char* op, const char* arg, const at::Tensor& t);

// How two views' memory relates, decided from the bytes they touch. kSame: the same elements at
// the same addresses (one start, shape and strides: an op working in place). kSeparate: proved to
// share no byte. kOverlap: they share bytes, or that they do not could not be proved.
enum class MemoryRelation { kSame, kSeparate, kOverlap };
MemoryRelation memory_relation(const at::Tensor& a, const at::Tensor& b);

// An output and another argument the schema does not let it alias: separate memory only.
void check_separate(const char* op, const char* arg, const at::Tensor& out, const char* other_arg,
                    const at::Tensor& other);
// An output and the input it may replace: that input itself (in place) or separate memory.
void check_in_place_or_separate(const char* op, const char* arg, const at::Tensor& out, const char* in_arg,
                                const at::Tensor& in);
// Every output against every argument it may not alias (check_separate; in-place pairs are
// checked where allowed).
using NamedTensors = std::initializer_list<std::pair<const char*, const at::Tensor*>>;
void check_apart(const char* op, NamedTensors outputs, NamedTensors others);

void check_contiguous(const char* op, const char* arg, const at::Tensor& t);

// Rows and hidden size of a [..., hidden] tensor whose innermost dimension must be contiguous
// (its leading dimensions unchecked: the caller decides how they may be laid out).
RowView rows_and_hidden(const char* op, const char* arg, const at::Tensor& t);

// As rows_and_hidden, and the leading dimensions must collapse to one row stride.
RowView row_view(const char* op, const char* arg, const at::Tensor& t);

}  // namespace flashhip::ops
