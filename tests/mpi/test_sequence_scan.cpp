// The sequence-parallel gated recurrence (parallel/sequence_scan.hpp) under mpiexec with 2
// and 4 ranks, and as a singleton (a world of one: the ops themselves, no traffic).
//
// Every rank builds the same full (B, T, C) inputs from fixed random streams
// (kernel_test_util.hpp), runs the single-process ops over the whole sequence as the
// reference, takes its pieces of rows and runs sp_gated_scan_forward and _backward with
// sp = the world, under both splits (parallel/sequence_split.hpp): contiguous, the chunk
// [r Tc, (r + 1) Tc); zigzag, chunks r and 2S - 1 - r of L rows, piece-major (2B, L, C),
// whose carries fold over the chunks in global order, not rank order. Shapes are no powers
// of two: B = 2, C = 5 and 37, L = 7 and 14 rows per piece (T = S Tc, Tc = L or 2L). The gate logits are offset per channel by -3, 0 or +3 (gates near
// 0.05, 0.5 or 0.95, plus N(0, 1.5^2) noise): long memories carry a state through whole
// chunks, short ones forget it within a row; the test checks that the carries change K and
// dk on the ranks that receive one.
// Tolerances (rel_error): 1e-12 in f64, 1e-5 in f32. The sp path adds the carry to a chunk
// scanned from zero where the reference scans through it: the same sums in another order,
// and no error grows (every gate is below 1).
//
// Traffic (tests/mpi/mpi_traffic_counter.hpp counts it through MPI's profiling interface):
// each sp call must make exactly one all-gather, sending F B C elements per piece (F = 3
// forward, 5 backward) whatever Tc, and no other communication.
//
// Built again for the GPU (tests/gpu/mpi): the chunk's tensors live on the rank's GPU, the
// summaries travel through NCCL (not counted by the MPI profiler: no traffic checks), f32
// only; the reference stays the CPU ops on the whole sequence.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/parallel_context.hpp"
#include "parallel/sequence_scan.hpp"
#include "parallel/sequence_split.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/mpi/mpi_traffic_counter.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kBatch = 2;

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-5; }

// Gate logits (B, T, C): per channel c an offset of 3 (c % 3 - 1), plus N(0, 1.5^2) noise.
Tensor gate_logits(const Shape& shape, DType dtype) {
  Tensor g = test::random_tensor(shape, "g", 1.5);
  double* p = g.data<double>();
  for (std::int64_t i = 0; i < g.numel(); ++i)
    p[i] += 3.0 * static_cast<double>(i % shape[2] % 3 - 1);
  return g.to(dtype);
}

// Rows [first, first + count) along T of x (B, T, C): a contiguous (B, count, C) copy.
Tensor time_rows(const Tensor& x, std::int64_t first, std::int64_t count) {
  const std::int64_t seq = x.dim(1), c = x.dim(2);
  Tensor out = Tensor::empty({x.dim(0), count, c}, x.dtype());
  for (std::int64_t b = 0; b < x.dim(0); ++b)
    out.rows(b, b + 1).copy_from(
        x.rows(b, b + 1).view({seq, c}).rows(first, first + count).view({1, count, c}));
  return out;
}

// This rank's pieces of x (B, T, C), piece-major: (count B, L, C), piece i at batch rows
// [i B, (i + 1) B).
Tensor piece_rows(const Tensor& x, const SequencePieces& pieces) {
  const std::int64_t batch = x.dim(0);
  Tensor out = Tensor::empty({pieces.count * batch, pieces.length, x.dim(2)}, x.dtype());
  for (int i = 0; i < pieces.count; ++i)
    out.rows(i * batch, (i + 1) * batch).copy_from(time_rows(x, pieces.begin(i), pieces.length));
  return out;
}

// Every (B, Tc, C) tensor of one scan's forward and backward.
struct ScanTensors {
  Tensor gate, K, V, dg, dk, dv;
  explicit ScanTensors(const Shape& shape, DType dtype, Device device = Device::cpu)
      : gate(Tensor::empty(shape, dtype, device)),
        K(Tensor::empty(shape, dtype, device)),
        V(Tensor::empty(shape, dtype, device)),
        dg(Tensor::empty(shape, dtype, device)),
        dk(Tensor::empty(shape, dtype, device)),
        dv(Tensor::empty(shape, dtype, device)) {}
};

// Expects one call's traffic: one all-gather of `fields` B C elements of `dtype` on a group
// of several ranks, nothing on a group of one; nothing else in either case.
void expect_one_all_gather(const test::Traffic& traffic, const Group& sp, std::int64_t fields,
                           std::int64_t channels, DType dtype, const std::string& label) {
  const bool shared = sp.size() > 1;
  const test::CallTraffic& all_gather = traffic[test::MpiCall::all_gather];
  EXPECT_EQ(all_gather.calls, shared ? 1 : 0) << label;
  EXPECT_EQ(all_gather.sent,
            shared ? fields * kBatch * channels * static_cast<long long>(dtype_size(dtype)) : 0)
      << label;
  EXPECT_EQ(traffic.total(), all_gather) << label;
}

void expect_close(const Tensor& got, const Tensor& ref, DType dtype, const std::string& label) {
  EXPECT_LE(test::rel_error(got.to(Device::cpu), ref), tolerance(dtype)) << label;
}

void check_chunk(const Group& sp, SequenceSplit split, DType dtype, std::int64_t piece_length,
                 std::int64_t channels) {
  const SequencePieces pieces =
      SequencePieces::with_piece_length(split, sp.rank(), sp.size(), piece_length);
  const Shape full = {kBatch, pieces.chunks() * piece_length, channels};  // (B, T, C)
  const Shape local = {pieces.count * kBatch, piece_length, channels};    // (count B, L, C)
  const std::string label = std::string(sequence_split_name(split)) + ", " +
                            std::string(dtype_name(dtype)) + ", L = " +
                            std::to_string(piece_length) +
                            ", C = " + std::to_string(channels) + ", rank " +
                            std::to_string(sp.rank()) + " of " + std::to_string(sp.size());

  const Tensor g = gate_logits(full, dtype);
  const Tensor k = test::random_tensor(full, "k", 1.0, dtype);
  const Tensor v = test::random_tensor(full, "v", 1.0, dtype);
  const Tensor dK = test::random_tensor(full, "dK", 1.0, dtype);
  const Tensor dV = test::random_tensor(full, "dV", 1.0, dtype);
  ScanTensors ref(full, dtype);
  ops::gated_scan_forward(g, k, v, ref.gate, ref.K, ref.V);
  ops::gated_scan_backward(ref.gate, k, v, ref.K, ref.V, dK, dV, ref.dg, ref.dk, ref.dv);
  const auto mine = [&](const Tensor& x) { return piece_rows(x, pieces); };

  const Tensor g_r = mine(g), k_r = mine(k), v_r = mine(v), dK_r = mine(dK), dV_r = mine(dV);
  const auto on_device = [](const Tensor& x) { return x.to(kTestDevice); };
  ScanTensors got(local, dtype, kTestDevice);
  const test::Traffic forward = test::traffic_of([&] {
    sp_gated_scan_forward(sp, split, on_device(g_r), on_device(k_r), on_device(v_r), got.gate,
                          got.K, got.V);
  });
  const test::Traffic backward = test::traffic_of([&] {
    sp_gated_scan_backward(sp, split, got.gate, on_device(k_r), on_device(v_r), got.K, got.V,
                           on_device(dK_r), on_device(dV_r), got.dg, got.dk, got.dv);
  });
  if (kTestDevice == Device::cpu) {
    expect_one_all_gather(forward, sp, pieces.count * ops::kStateSummaryFields, channels,
                          dtype, label + ", forward");
    expect_one_all_gather(backward, sp, pieces.count * ops::kAdjointSummaryFields, channels,
                          dtype, label + ", backward");
  }

  expect_close(got.gate, mine(ref.gate), dtype, label + ", gate");
  expect_close(got.K, mine(ref.K), dtype, label + ", K");
  expect_close(got.V, mine(ref.V), dtype, label + ", V");
  expect_close(got.dg, mine(ref.dg), dtype, label + ", dg");
  expect_close(got.dk, mine(ref.dk), dtype, label + ", dk");
  expect_close(got.dv, mine(ref.dv), dtype, label + ", dv");

  // The carries matter: the chunk alone (zero state, nothing from later rows) is far off
  // wherever a carry arrives, so the checks above do test them.
  ScanTensors alone(local, dtype);
  ops::gated_scan_forward(g_r, k_r, v_r, alone.gate, alone.K, alone.V);
  ops::gated_scan_backward(alone.gate, k_r, v_r, alone.K, alone.V, dK_r, dV_r, alone.dg, alone.dk,
                           alone.dv);
  // A carry arrives from earlier chunks unless this rank holds only chunk 0, and from
  // later ones unless it holds only the last chunk (zigzag: every rank gets both).
  if (pieces.chunk(pieces.count - 1) > 0) {
    EXPECT_GT(test::rel_error(alone.K, got.K.to(Device::cpu)), 1e-2) << label;
  }
  if (pieces.chunk(0) + 1 < pieces.chunks()) {
    EXPECT_GT(test::rel_error(alone.dk, got.dk.to(Device::cpu)), 1e-2) << label;
  }
}

TEST(SequenceScan, EqualsTheWholeSequenceOnEveryChunk) {
  if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
  const Group world = world_group();
  const Group sp = ParallelContext::create(world, {.sp = world.size()}, kTestDevice).sp;
  const std::vector<DType> dtypes =
      kTestDevice == Device::cpu ? std::vector{DType::f64, DType::f32} : std::vector{DType::f32};
  for (const SequenceSplit split : {SequenceSplit::contiguous, SequenceSplit::zigzag}) {
    if (split == SequenceSplit::zigzag && sp.size() == 1) continue;  // a group of one: one piece
    for (const DType dtype : dtypes)
      for (const std::int64_t piece_length : {7, 14})
        for (const std::int64_t channels : {5, 37})
          check_chunk(sp, split, dtype, piece_length, channels);
  }
}

}  // namespace
}  // namespace ratrain
