// The carry ops of the gated recurrence (ops.hpp, "The recurrence across chunks of T") on
// one process, against gated_scan_forward / _backward on sequences that realise each op's
// meaning exactly:
// - a chunk entered with the state s is the chunk after an extra first row of gate 0 (logit
//   -inf) and k = s_K, v = s_V: that row's K, V are s;
// - an adjoint c arriving at the chunk's last row is c added to that row's dK, dV;
// - the adjoint leaving the chunk is dk, dv of the extra row (its 1 - gate is 1);
// - folding the maps of two chunks is scanning them as one sequence.
// Tolerances (rel_error): 1e-12 in f64, 1e-5 in f32: the same sums in another order. Shapes:
// B = 2; Tc = 1 and 6; C = 3 and 37 (no multiple of the CPU kernels' 64-channel chunks).
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/unit/error_test_util.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

using test::random_tensor;
using test::rel_error;

constexpr std::int64_t kBatch = 2;

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-5; }

// x (B, T, C) at (b, t, j); also a (F, B, C) tensor at (f, b, j).
double at(const Tensor& x, std::int64_t b, std::int64_t t, std::int64_t j) {
  return x.item((b * x.dim(1) + t) * x.dim(2) + j);
}

// A (B, T, C) tensor of `dtype` with element(b, t, j).
Tensor build(const Shape& shape, DType dtype,
             const std::function<double(std::int64_t, std::int64_t, std::int64_t)>& element) {
  Tensor x = Tensor::empty(shape, DType::f64);
  double* p = x.data<double>();
  for (std::int64_t b = 0; b < shape[0]; ++b)
    for (std::int64_t t = 0; t < shape[1]; ++t)
      for (std::int64_t j = 0; j < shape[2]; ++j) *p++ = element(b, t, j);
  return x.to(dtype);
}

// Rows [first, first + count) along T of x (B, T, C).
Tensor slice_time(const Tensor& x, std::int64_t first, std::int64_t count) {
  return build(
      {x.dim(0), count, x.dim(2)}, x.dtype(),
      [&](std::int64_t b, std::int64_t t, std::int64_t j) { return at(x, b, first + t, j); });
}

// x (B, T, C) after an extra first row (B, C) = row(b, j), and with `last(b, j)` added to its
// last row.
Tensor extend(const Tensor& x, const std::function<double(std::int64_t, std::int64_t)>& row,
              const std::function<double(std::int64_t, std::int64_t)>& last) {
  const std::int64_t seq = x.dim(1);
  return build({x.dim(0), seq + 1, x.dim(2)}, x.dtype(),
               [&](std::int64_t b, std::int64_t t, std::int64_t j) {
                 if (t == 0) return row(b, j);
                 return at(x, b, t - 1, j) + (t == seq ? last(b, j) : 0.0);
               });
}

// Field f of a (F, B, C) tensor as a function of (b, j).
std::function<double(std::int64_t, std::int64_t)> field(const Tensor& fields, std::int64_t f) {
  return [&fields, f](std::int64_t b, std::int64_t j) { return at(fields, f, b, j); };
}
double zero(std::int64_t, std::int64_t) { return 0.0; }

// (2, B, C): row t of x and of y (B, T, C).
Tensor row_pair(const Tensor& x, const Tensor& y, std::int64_t t) {
  return build(
      {2, x.dim(0), x.dim(2)}, x.dtype(),
      [&](std::int64_t f, std::int64_t b, std::int64_t j) { return at(f == 0 ? x : y, b, t, j); });
}
Tensor end_state(const Tensor& K, const Tensor& V) { return row_pair(K, V, K.dim(1) - 1); }

// The inputs of one chunk (B, Tc, C), its entering state and arriving adjoint (2, B, C).
struct Chunk {
  Tensor g, k, v, dK, dV, state, adjoint;
};

Chunk random_chunk(std::int64_t rows, std::int64_t channels, DType dtype) {
  const Shape shape = {kBatch, rows, channels}, pair = {2, kBatch, channels};
  // Logits of N(0, 2.5^2): gates from ~0.001 to ~0.999.
  return {.g = random_tensor(shape, "g", 2.5, dtype),
          .k = random_tensor(shape, "k", 1.0, dtype),
          .v = random_tensor(shape, "v", 1.0, dtype),
          .dK = random_tensor(shape, "dK", 1.0, dtype),
          .dV = random_tensor(shape, "dV", 1.0, dtype),
          .state = random_tensor(pair, "state", 1.0, dtype),
          .adjoint = random_tensor(pair, "adjoint", 1.0, dtype)};
}

// Every (B, T, C) tensor of one scan's forward and backward.
struct Scan {
  Tensor gate, K, V, dg, dk, dv;
};

Scan empty_scan(const Shape& shape, DType dtype) {
  const auto e = [&] { return Tensor::empty(shape, dtype); };
  return {.gate = e(), .K = e(), .V = e(), .dg = e(), .dk = e(), .dv = e()};
}

// The chunk entered with c.state and receiving c.adjoint at its last row, by the whole-
// sequence ops on the extended chunk: its rows, then the adjoint leaving it (2, B, C).
struct Reference {
  Scan rows;
  Tensor leaving;
};

Reference reference(const Chunk& c) {
  const double minus_inf = -std::numeric_limits<double>::infinity();
  const auto gate_zero = [&](std::int64_t, std::int64_t) { return minus_inf; };
  const Tensor g = extend(c.g, gate_zero, zero), k = extend(c.k, field(c.state, 0), zero),
               v = extend(c.v, field(c.state, 1), zero);
  const Tensor dK = extend(c.dK, zero, field(c.adjoint, 0));
  const Tensor dV = extend(c.dV, zero, field(c.adjoint, 1));
  Scan s = empty_scan(g.shape(), g.dtype());
  ops::gated_scan_forward(g, k, v, s.gate, s.K, s.V);
  ops::gated_scan_backward(s.gate, k, v, s.K, s.V, dK, dV, s.dg, s.dk, s.dv);
  const std::int64_t rows = c.g.dim(1);
  const auto chunk_rows = [&](const Tensor& x) { return slice_time(x, 1, rows); };
  return {.rows = {.gate = chunk_rows(s.gate),
                   .K = chunk_rows(s.K),
                   .V = chunk_rows(s.V),
                   .dg = chunk_rows(s.dg),
                   .dk = chunk_rows(s.dk),
                   .dv = chunk_rows(s.dv)},
          .leaving = row_pair(s.dk, s.dv, 0)};
}

struct CarryCase {
  DType dtype;
  std::int64_t rows, channels;
  std::string label() const {
    return std::string(dtype_name(dtype)) + " (B, Tc, C) = (" + std::to_string(kBatch) + ", " +
           std::to_string(rows) + ", " + std::to_string(channels) + ")";
  }
};

std::vector<CarryCase> carry_cases() {
  std::vector<CarryCase> cases;
  for (const DType dtype : {DType::f64, DType::f32})
    for (const std::int64_t rows : {1, 6})
      for (const std::int64_t channels : {3, 37}) cases.push_back({dtype, rows, channels});
  return cases;
}

TEST(GatedScanCarry, CarryOpsEqualTheChunkEnteredWithAState) {
  for (const CarryCase& cc : carry_cases()) {
    const Chunk c = random_chunk(cc.rows, cc.channels, cc.dtype);
    const Reference ref = reference(c);
    const double tol = tolerance(cc.dtype);
    const Shape pair = {2, kBatch, cc.channels};

    // Forward: scanned from zero, summarised, then carried.
    Scan s = empty_scan(c.g.shape(), cc.dtype);
    ops::gated_scan_forward(c.g, c.k, c.v, s.gate, s.K, s.V);
    Tensor summary = Tensor::empty({ops::kStateSummaryFields, kBatch, cc.channels}, cc.dtype);
    ops::gated_scan_state_summary(s.gate, s.K, s.V, summary);
    ops::gated_scan_apply_carry(s.gate, c.state, s.K, s.V);
    EXPECT_LE(rel_error(s.K, ref.rows.K), tol) << cc.label();
    EXPECT_LE(rel_error(s.V, ref.rows.V), tol) << cc.label();
    // The state map: P s + X is the end state of the chunk entered with s.
    const Tensor end = build(pair, cc.dtype, [&](std::int64_t f, std::int64_t b, std::int64_t j) {
      return field(summary, 0)(b, j) * field(c.state, f)(b, j) + field(summary, 1 + f)(b, j);
    });
    EXPECT_LE(rel_error(end, end_state(ref.rows.K, ref.rows.V)), tol) << cc.label();

    // Backward: zero carry, then corrected.
    ops::gated_scan_backward(s.gate, c.k, c.v, s.K, s.V, c.dK, c.dV, s.dg, s.dk, s.dv);
    Tensor adjoint_summary =
        Tensor::empty({ops::kAdjointSummaryFields, kBatch, cc.channels}, cc.dtype);
    ops::gated_scan_adjoint_summary(s.gate, c.dK, c.dV, s.K, s.V, adjoint_summary);
    ops::gated_scan_carry_backward(s.gate, c.k, c.v, s.K, s.V, c.state, c.adjoint, s.dg, s.dk,
                                   s.dv);
    EXPECT_LE(rel_error(s.dg, ref.rows.dg), tol) << cc.label();
    EXPECT_LE(rel_error(s.dk, ref.rows.dk), tol) << cc.label();
    EXPECT_LE(rel_error(s.dv, ref.rows.dv), tol) << cc.label();
    // The adjoint map: P c + Z leaves the chunk; the end state follows, exactly.
    const Tensor leaving =
        build(pair, cc.dtype, [&](std::int64_t f, std::int64_t b, std::int64_t j) {
          return field(adjoint_summary, 0)(b, j) * field(c.adjoint, f)(b, j) +
                 field(adjoint_summary, 1 + f)(b, j);
        });
    EXPECT_LE(rel_error(leaving, ref.leaving), tol) << cc.label();
    EXPECT_EQ(rel_error(adjoint_summary.rows(3, 5), end_state(s.K, s.V)), 0.0) << cc.label();
  }
}

TEST(GatedScanCarry, FoldingTwoChunksIsScanningThemAsOne) {
  for (const DType dtype : {DType::f64, DType::f32}) {
    constexpr std::int64_t kFirst = 4, kSecond = 3, kChannels = 37;
    const Chunk whole = random_chunk(kFirst + kSecond, kChannels, dtype);
    Scan s = empty_scan(whole.g.shape(), dtype);
    ops::gated_scan_forward(whole.g, whole.k, whole.v, s.gate, s.K, s.V);
    Tensor whole_adjoint = Tensor::empty({ops::kAdjointSummaryFields, kBatch, kChannels}, dtype);
    ops::gated_scan_adjoint_summary(s.gate, whole.dK, whole.dV, s.K, s.V, whole_adjoint);

    // Each chunk alone, from zero: its state summary and its adjoint summary.
    Tensor states = Tensor::empty({2, ops::kStateSummaryFields, kBatch, kChannels}, dtype);
    Tensor adjoints = Tensor::empty({2, ops::kAdjointSummaryFields, kBatch, kChannels}, dtype);
    const std::int64_t first_row[2] = {0, kFirst}, rows[2] = {kFirst, kSecond};
    for (std::int64_t i = 0; i < 2; ++i) {
      const auto part = [&](const Tensor& x) { return slice_time(x, first_row[i], rows[i]); };
      const Tensor g = part(whole.g), k = part(whole.k), v = part(whole.v);
      Scan p = empty_scan(g.shape(), dtype);
      ops::gated_scan_forward(g, k, v, p.gate, p.K, p.V);
      Tensor state_summary =
          states.rows(i, i + 1).view({ops::kStateSummaryFields, kBatch, kChannels});
      Tensor adjoint_summary =
          adjoints.rows(i, i + 1).view({ops::kAdjointSummaryFields, kBatch, kChannels});
      ops::gated_scan_state_summary(p.gate, p.K, p.V, state_summary);
      ops::gated_scan_adjoint_summary(p.gate, part(whole.dK), part(whole.dV), p.K, p.V,
                                      adjoint_summary);
    }

    Tensor folded = Tensor::empty({2, kBatch, kChannels}, dtype);
    ops::gated_scan_fold(states, ops::FoldOrder::first_to_last, folded);
    EXPECT_LE(rel_error(folded, end_state(s.K, s.V)), tolerance(dtype));
    // Summaries of five fields: the end states after the map are not read.
    ops::gated_scan_fold(adjoints, ops::FoldOrder::last_to_first, folded);
    EXPECT_LE(rel_error(folded, whole_adjoint.rows(1, 3)), tolerance(dtype));
    ops::gated_scan_fold(states.rows(0, 0), ops::FoldOrder::first_to_last, folded);
    EXPECT_EQ(test::norm(folded), 0.0) << "no chunks: the zero state";
  }
}

TEST(GatedScanCarry, ErrorsNameTheOpAndTheOperand) {
  const Tensor x = Tensor::zeros({2, 3, 4}, DType::f64);
  Tensor K = Tensor::zeros({2, 3, 4}, DType::f64), V = Tensor::zeros({2, 3, 4}, DType::f64);
  const Tensor wrong_state = Tensor::zeros({2, 2, 5}, DType::f64);
  std::string msg = error_of([&] { ops::gated_scan_apply_carry(x, wrong_state, K, V); });
  EXPECT_NE(msg.find("gated_scan_apply_carry: state_in has shape (2, 2, 5), expected (2, 2, 4)"),
            std::string::npos)
      << msg;

  const Tensor two_field_summaries = Tensor::zeros({3, 2, 2, 4}, DType::f64);  // (n, F, B, C)
  Tensor state = Tensor::zeros({2, 2, 4}, DType::f64);
  msg = error_of(
      [&] { ops::gated_scan_fold(two_field_summaries, ops::FoldOrder::first_to_last, state); });
  EXPECT_NE(msg.find("gated_scan_fold: a summary needs the fields P, X_K, X_V"), std::string::npos)
      << msg;

  const Tensor no_rows = Tensor::zeros({2, 0, 4}, DType::f64);
  Tensor summary = Tensor::zeros({ops::kStateSummaryFields, 2, 4}, DType::f64);
  msg = error_of([&] { ops::gated_scan_state_summary(no_rows, no_rows, no_rows, summary); });
  EXPECT_NE(msg.find("gated_scan_state_summary: a chunk to summarise needs at least one row"),
            std::string::npos)
      << msg;

  const Tensor f32 = Tensor::zeros({2, 3, 4}, DType::f32);
  msg = error_of([&] { ops::gated_scan_apply_carry(f32, state, K, V); });
  EXPECT_NE(msg.find("gated_scan_apply_carry: gate must be f64 on cpu, got f32 on cpu"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace ratrain
