// Host-side checks and dispatch for the per-token layer ops of ops.hpp: embedding (full
// table or vocab shard), RMSNorm, linear, column split/concat, output gate, GELU, add.
// Shapes and dtypes are checked here; the kernels in kernels/cpu assume them.
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::require_f32_on_gpu;
using detail::require_index_tensor;
using detail::require_rank;
using detail::require_shapes;


// Checks shared by the embedding ops of the full table and of a vocab shard.
namespace {
// "<op>: <name>", the subject of a check's error message.
std::string operand(const char* op, const char* name) { return std::string(op) + ": " + name; }

void check_embedding_forward(const Tensor& ids, const Tensor& emb, const Tensor& out,
                             const char* op) {
  require_rank(emb, 2, operand(op, "emb").c_str());
  require_rank(ids, 1, operand(op, "ids").c_str());
  require_index_tensor(ids, ids.dim(0), emb, operand(op, "ids").c_str());
  require_shape(out, {ids.dim(0), emb.dim(1)}, operand(op, "out").c_str());
  require_same_type(emb, {&out}, op);
}

void check_embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& demb,
                              const char* op) {
  require_rank(demb, 2, operand(op, "demb").c_str());
  require_rank(ids, 1, operand(op, "ids").c_str());
  require_shape(dout, {ids.dim(0), demb.dim(1)}, operand(op, "dout").c_str());
  require_index_tensor(ids, ids.dim(0), dout, operand(op, "ids").c_str());
  require_f32_on_gpu(dout, demb, "demb", op);
}

void check_vocab_begin(std::int64_t vocab_begin, const char* op) {
  RT_REQUIRE(vocab_begin >= 0, op, ": vocab_begin must be >= 0, got ", vocab_begin);
}
}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out) {
  check_embedding_forward(ids, emb, out, "embedding_forward");
  RT_DISPATCH_CUDA(emb, embedding_forward, ids, emb, out);
  dispatch_float(emb, "embedding_forward",
                 [&](auto t) { cpu::embedding_forward<decltype(t)>(ids, emb, out); });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb) {
  check_embedding_backward(ids, dout, demb, "embedding_backward");
  RT_DISPATCH_CUDA(demb, embedding_backward, ids, dout, demb);
  dispatch_float(demb, "embedding_backward",
                 [&](auto t) { cpu::embedding_backward<decltype(t)>(ids, dout, demb); });
}

void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard,
                             std::int64_t vocab_begin, Tensor& out) {
  constexpr const char* op = "embedding_shard_forward";
  check_embedding_forward(ids, emb_shard, out, op);
  check_vocab_begin(vocab_begin, op);
  RT_DISPATCH_CUDA(emb_shard, embedding_shard_forward, ids, emb_shard, vocab_begin, out);
  dispatch_float(emb_shard, op, [&](auto t) {
    cpu::embedding_shard_forward<decltype(t)>(ids, emb_shard, vocab_begin, out);
  });
}

void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard) {
  constexpr const char* op = "embedding_shard_backward";
  check_embedding_backward(ids, dout, demb_shard, op);
  check_vocab_begin(vocab_begin, op);
  RT_DISPATCH_CUDA(demb_shard, embedding_shard_backward, ids, dout, vocab_begin, demb_shard);
  dispatch_float(demb_shard, op, [&](auto t) {
    cpu::embedding_shard_backward<decltype(t)>(ids, dout, vocab_begin, demb_shard);
  });
}

void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd) {
  require_rank(x, 2, "rmsnorm_forward: x");
  require_shape(w, {x.dim(1)}, "rmsnorm_forward: w");
  require_shape(y, x.shape(), "rmsnorm_forward: y");
  require_shape(rstd, {x.dim(0)}, "rmsnorm_forward: rstd");
  require_same_type(x, {&w, &y}, "rmsnorm_forward");
  require_f32_on_gpu(x, rstd, "rstd", "rmsnorm_forward");
  RT_REQUIRE(eps >= 0, "rmsnorm_forward: eps must be >= 0, got ", eps);
  RT_DISPATCH_CUDA(x, rmsnorm_forward, x, w, eps, y, rstd);
  dispatch_float(x, "rmsnorm_forward",
                 [&](auto t) { cpu::rmsnorm_forward<decltype(t)>(x, w, eps, y, rstd); });
}

void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw) {
  require_rank(x, 2, "rmsnorm_backward: x");
  require_shape(w, {x.dim(1)}, "rmsnorm_backward: w");
  require_shape(rstd, {x.dim(0)}, "rmsnorm_backward: rstd");
  require_shape(dy, x.shape(), "rmsnorm_backward: dy");
  require_shape(dx, x.shape(), "rmsnorm_backward: dx");
  require_shape(dw, w.shape(), "rmsnorm_backward: dw");
  require_same_type(x, {&w, &dy, &dx}, "rmsnorm_backward");
  require_f32_on_gpu(x, rstd, "rstd", "rmsnorm_backward");
  require_f32_on_gpu(x, dw, "dw", "rmsnorm_backward");
  RT_DISPATCH_CUDA(x, rmsnorm_backward, x, w, rstd, dy, dx, dw);
  dispatch_float(x, "rmsnorm_backward",
                 [&](auto t) { cpu::rmsnorm_backward<decltype(t)>(x, w, rstd, dy, dx, dw); });
}

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y) {
  require_rank(x, 2, "linear_forward: x");
  require_rank(w, 2, "linear_forward: W");
  require_shape(w, {w.dim(0), x.dim(1)}, "linear_forward: W");
  require_shape(y, {x.dim(0), w.dim(0)}, "linear_forward: y");
  require_same_type(x, {&w, &y}, "linear_forward");
  RT_DISPATCH_CUDA(x, linear_forward, x, w, y);
  dispatch_float(x, "linear_forward", [&](auto t) { cpu::linear_forward<decltype(t)>(x, w, y); });
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw) {
  require_rank(x, 2, "linear_backward: x");
  require_rank(w, 2, "linear_backward: W");
  require_shape(w, {w.dim(0), x.dim(1)}, "linear_backward: W");
  require_shape(dy, {x.dim(0), w.dim(0)}, "linear_backward: dy");
  require_shape(dw, w.shape(), "linear_backward: dW");
  require_same_type(x, {&w, &dy}, "linear_backward");
  require_f32_on_gpu(x, dw, "dW", "linear_backward");
  Tensor* dx_out = dx && dx->defined() ? dx : nullptr;
  if (dx_out) {
    require_shape(*dx_out, x.shape(), "linear_backward: dx");
    require_same_type(x, {dx_out}, "linear_backward");
  }
  RT_DISPATCH_CUDA(x, linear_backward, x, w, dy, dx_out, dw);
  dispatch_float(x, "linear_backward",
                 [&](auto t) { cpu::linear_backward<decltype(t)>(x, w, dy, dx_out, dw); });
}

namespace {
// Checks x (N, count*C) against parts[s] (N, C) for split_columns / concat_columns.
void check_columns(const Tensor& x, const Tensor* const* parts, int count, const char* op) {
  RT_REQUIRE(count >= 1, op, ": needs at least one part, got ", count);
  require_rank(x, 2, op);
  RT_REQUIRE(x.dim(1) % count == 0, op, ": ", x.dim(1), " columns do not split into ", count,
             " equal parts");
  const Shape part_shape{x.dim(0), x.dim(1) / count};
  for (int s = 0; s < count; ++s) {
    const std::string what = std::string(op) + ": part " + std::to_string(s);
    RT_REQUIRE(parts[s] != nullptr, what, " is null");
    require_shape(*parts[s], part_shape, what.c_str());
    require_same_type(x, {parts[s]}, op);
  }
}
}  // namespace

void split_columns(const Tensor& x, Tensor* const* parts, int count) {
  check_columns(x, parts, count, "split_columns");
  RT_DISPATCH_CUDA(x, split_columns, x, parts, count);
  dispatch_float(x, "split_columns",
                 [&](auto t) { cpu::split_columns<decltype(t)>(x, parts, count); });
}

void concat_columns(const Tensor* const* parts, int count, Tensor& x) {
  check_columns(x, parts, count, "concat_columns");
  RT_DISPATCH_CUDA(x, concat_columns, parts, count, x);
  dispatch_float(x, "concat_columns",
                 [&](auto t) { cpu::concat_columns<decltype(t)>(parts, count, x); });
}

void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y) {
  require_shape(o, attn.shape(), "output_gate_forward: o");
  require_shape(y, attn.shape(), "output_gate_forward: y");
  require_same_type(attn, {&o, &y}, "output_gate_forward");
  RT_DISPATCH_CUDA(attn, output_gate_forward, attn, o, y);
  dispatch_float(attn, "output_gate_forward",
                 [&](auto t) { cpu::output_gate_forward<decltype(t)>(attn, o, y); });
}

void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o) {
  require_shapes(attn.shape(), {{&o, "o"}, {&dy, "dy"}, {&dattn, "dattn"}, {&d_o, "d_o"}},
                 "output_gate_backward");
  require_same_type(attn, {&o, &dy, &dattn, &d_o}, "output_gate_backward");
  RT_DISPATCH_CUDA(attn, output_gate_backward, attn, o, dy, dattn, d_o);
  dispatch_float(attn, "output_gate_backward", [&](auto t) {
    cpu::output_gate_backward<decltype(t)>(attn, o, dy, dattn, d_o);
  });
}

void gelu_forward(const Tensor& x, Tensor& y) {
  require_shape(y, x.shape(), "gelu_forward: y");
  require_same_type(x, {&y}, "gelu_forward");
  RT_DISPATCH_CUDA(x, gelu_forward, x, y);
  dispatch_float(x, "gelu_forward", [&](auto t) { cpu::gelu_forward<decltype(t)>(x, y); });
}

void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  require_shape(dy, x.shape(), "gelu_backward: dy");
  require_shape(dx, x.shape(), "gelu_backward: dx");
  require_same_type(x, {&dy, &dx}, "gelu_backward");
  RT_DISPATCH_CUDA(x, gelu_backward, x, dy, dx);
  dispatch_float(x, "gelu_backward", [&](auto t) { cpu::gelu_backward<decltype(t)>(x, dy, dx); });
}

void add_inplace(Tensor& acc, const Tensor& x) {
  require_shape(x, acc.shape(), "add_inplace: x");
  require_same_type(acc, {&x}, "add_inplace");
  RT_DISPATCH_CUDA(acc, add_inplace, acc, x);
  dispatch_float(acc, "add_inplace", [&](auto t) { cpu::add_inplace<decltype(t)>(acc, x); });
}

}  // namespace ratrain::ops
