// Bytes per layer under sequence parallelism (issue #4 acceptance; DESIGN.md "Parallel
// layout", SP): the dilated exchange grows as T/D, the recurrence carry does not grow with
// T, no rank holds the whole sequence's K or V, and a RAT+ layer sends nothing else.
//
// Every MPI call is counted per rank and call kind by tests/mpi/mpi_traffic_counter.hpp
// (MPI's profiling interface; its table says what "sent" and "received" mean per call),
// in phases: one forward or backward call of sp_gated_scan_*, sp_attention_*, or one
// RatLM::forward_backward. sp = the world, S = 2 or 4 ranks, Tc positions per rank,
// T = S Tc. Every figure is exact, so every check is ==.
//
// Shapes: B = 2 samples, H = 2 heads of dh = 4 (the scan's C = H dh = 8 channels), f32
// (4 bytes). One key row (one position's k and v, all samples and heads) is
// 2 B H dh 4 = 128 bytes.
//
// Expected, per rank and layer (forward + backward):
// - Carry (sequence_scan.hpp): one all-gather of 3 B C elements forward, 5 B C backward:
//   192 + 320 = 512 bytes sent, whatever Tc.
// - Chunk ends (dilated_key_plan.hpp): each rank contributes cap = chunk_end_capacity(D, Tc)
//   = ceil(Tc / D) rows to an all-gather in forward and again in backward (which
//   recomputes the key set), and returns the gradients of the S - 1 other ranks' slots
//   by one reduce-scatter: (S + 1) cap rows sent. D = 8 divides every Tc used (8, 16, 32,
//   64), so cap = Tc / 8 = T / (S D) exactly: 384, 768, 1536, 3072 bytes at S = 2;
//   640, 1280, 2560, 5120 at S = 4. Doubling T doubles them.
// - Prefix and halo (point to point; needs Tc >= P + W): rank r > 0 receives the P
//   prefix keys from rank 0 and the W halo keys from rank r - 1, rank 0 sends (S - 1) P
//   + W rows, ranks 1 .. S - 2 send W, the last rank none. Three passes move them
//   (forward, backward's recomputed assembly, backward's gradients going back): for
//   D = 8, W = 4, P = 2 that is 3 (S - 1)(P + W) = 18 (S - 1) rows over all ranks, 2304
//   bytes at S = 2, 6912 at S = 4, whatever T; none for D = 8, W = 0, P = 0.
// - Keys: rank r > 0 receives (S - 1) cap + P + W key rows per forward (the plan's
//   keys_received), <= P + W + T/D + S, and holds them with its own Tc: fewer than T.
// - The model (2 layers, one per rule above, d = 8, 2 heads): forward_backward's traffic
//   equals, call kind by call kind, the sum over its layers of the carry and attention
//   traffic measured alone: the vocab-parallel embedding and loss, the norms and the FFN
//   send nothing under sp alone (summing the loss over sp is the trainer's, outside).
//   From Tc = 16 to 32 it grows by exactly the chunk-end part, 2 layers x (S + 1)(4 - 2)
//   rows = 1536 bytes at S = 2, 2560 at S = 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "model/rat_lm.hpp"
#include "parallel/dilated_key_plan.hpp"
#include "parallel/parallel_context.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_scan.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/mpi/mpi_traffic_counter.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

using test::CallTraffic;
using test::MpiCall;
using test::Traffic;

constexpr std::int64_t kBatch = 2, kHeads = 2, kHeadDim = 4;
constexpr std::int64_t kChannels = kHeads * kHeadDim;  // the scan's C, the model's d
constexpr DType kDtype = DType::f32;
constexpr long long kElementBytes = 4;
constexpr long long kKeyRowBytes = 2 * kBatch * kHeads * kHeadDim * kElementBytes;  // k and v
constexpr long long kScanForwardBytes = 3 * kBatch * kChannels * kElementBytes;     // 192
constexpr long long kScanBackwardBytes = 5 * kBatch * kChannels * kElementBytes;    // 320

// Chunk lengths per rank, each twice the one before; D = 8 divides each.
const std::vector<std::int64_t> kChunks = {8, 16, 32, 64};
constexpr int kDilation = 8;
const Sparsity kRules[] = {{kDilation, 4, 2}, {kDilation, 0, 0}};

std::string rule_name(const Sparsity& rule) {
  return "D=" + std::to_string(rule.dilation) + " W=" + std::to_string(rule.window) +
         " P=" + std::to_string(rule.initial);
}

// The sp group: the world, of at least two ranks (the registration runs np 2 and 4).
Group sp_world() {
  Group world = world_group();
  RT_REQUIRE(world.size() > 1, "test_sp_traffic needs mpiexec -np 2 or more");
  return world;
}

// One layer part's traffic on this rank.
struct PassTraffic {
  Traffic forward, backward;
  Traffic both() const {
    Traffic sum = forward;
    sum += backward;
    return sum;
  }
};

// Inputs of the exchanges: their values do not change what is sent.
Tensor input(const Shape& shape, const char* name) {
  return test::random_tensor(shape, name, 1.0, kDtype);
}

PassTraffic scan_traffic(const Group& sp, std::int64_t chunk) {
  const Shape shape{kBatch, chunk, kChannels};
  const Tensor g = input(shape, "g"), k = input(shape, "k"), v = input(shape, "v"),
               dK = input(shape, "dK"), dV = input(shape, "dV");
  Tensor gate = Tensor::empty(shape, kDtype), K = Tensor::empty(shape, kDtype),
         V = Tensor::empty(shape, kDtype), dg = Tensor::empty(shape, kDtype),
         dk = Tensor::empty(shape, kDtype), dv = Tensor::empty(shape, kDtype);
  PassTraffic t;
  constexpr SequenceSplit kSplit = SequenceSplit::contiguous;
  t.forward = test::traffic_of([&] { sp_gated_scan_forward(sp, kSplit, g, k, v, gate, K, V); });
  t.backward = test::traffic_of(
      [&] { sp_gated_scan_backward(sp, kSplit, gate, k, v, K, V, dK, dV, dg, dk, dv); });
  return t;
}

PassTraffic attention_traffic(const Group& sp, const Sparsity& rule, std::int64_t chunk) {
  const Shape shape{kBatch, chunk, kHeads, kHeadDim};
  const Tensor q = input(shape, "q"), k = input(shape, "k"), v = input(shape, "v"),
               dout = input(shape, "dout");
  Tensor out = Tensor::empty(shape, kDtype), lse = Tensor::empty({kBatch, kHeads, chunk}, kDtype),
         dq = Tensor::empty(shape, kDtype), dk = Tensor::empty(shape, kDtype),
         dv = Tensor::empty(shape, kDtype);
  PassTraffic t;
  constexpr SequenceSplit kSplit = SequenceSplit::contiguous;  // the dilated exchange's
  t.forward =
      test::traffic_of([&] { sp_attention_forward(sp, kSplit, q, k, v, rule, out, lse); });
  t.backward = test::traffic_of(
      [&] { sp_attention_backward(sp, kSplit, q, k, v, out, lse, dout, rule, dq, dk, dv); });
  return t;
}

// The chunk-end exchange (all-gather forward, plus reduce-scatter backward) and the prefix
// and halo exchange (point to point) of attention traffic.
CallTraffic chunk_end_part(const Traffic& t) {
  CallTraffic sum = t[MpiCall::all_gather];
  sum += t[MpiCall::reduce_scatter];
  return sum;
}
CallTraffic halo_part(const Traffic& t) {
  CallTraffic sum = t[MpiCall::send];
  sum += t[MpiCall::recv];
  return sum;
}

// Key rows of the prefix and halo that `rank` sends and receives in one pass of the
// forward flow (file comment; Tc >= P + W keeps the halo of rank 1 apart from the prefix
// and each range within one owner).
struct HaloRows {
  long long sent, received;
};
HaloRows halo_rows(const Sparsity& rule, int rank, int ranks) {
  const long long P = rule.initial, W = rule.window;
  return {.sent = (rank == 0 ? (ranks - 1) * P : 0) + (rank + 1 < ranks ? W : 0),
          .received = rank > 0 ? P + W : 0};
}

// `value` of every rank, in rank order; not recorded (outside any traffic_of).
std::vector<long long> from_every_rank(const Group& group, long long value) {
  Tensor mine = Tensor::empty({1}, DType::f64);
  mine.data<double>()[0] = static_cast<double>(value);  // exact: far below 2^53
  const Tensor all = group.all_gather(mine);
  std::vector<long long> values;
  for (std::int64_t i = 0; i < all.numel(); ++i)
    values.push_back(static_cast<long long>(all.item(i)));
  return values;
}

long long sum_of(const std::vector<long long>& v) {
  long long sum = 0;
  for (const long long x : v) sum += x;
  return sum;
}

TEST(SpTraffic, CarryExchangeIsIndependentOfT) {
  const Group sp = sp_world();
  const PassTraffic first = scan_traffic(sp, kChunks.front());
  Traffic forward, backward;
  forward[MpiCall::all_gather] = {
      .calls = 1, .sent = kScanForwardBytes, .received = (sp.size() - 1) * kScanForwardBytes};
  backward[MpiCall::all_gather] = {
      .calls = 1, .sent = kScanBackwardBytes, .received = (sp.size() - 1) * kScanBackwardBytes};
  EXPECT_EQ(first.forward, forward);
  EXPECT_EQ(first.backward, backward);
  for (const std::int64_t chunk : kChunks) {
    const PassTraffic t = scan_traffic(sp, chunk);
    EXPECT_EQ(t.forward, first.forward) << "Tc = " << chunk;
    EXPECT_EQ(t.backward, first.backward) << "Tc = " << chunk;
  }
}

// Checks one rule at every Tc against the file comment's figures and prints the table.
void check_attention_scaling(const Sparsity& rule) {
  const Group sp = sp_world();
  const int S = sp.size(), rank = sp.rank();
  const HaloRows halo = halo_rows(rule, rank, S);
  const long long scan_bytes = scan_traffic(sp, kChunks.front()).both().total().sent;
  if (rank == 0) {
    std::printf("\nSP traffic per layer, rule %s, S = %d, B = %lld, H = %lld, dh = %lld, f32;\n"
                "bytes sent in forward + backward\n"
                "%6s %4s %12s %17s %26s %20s %16s\n",
                rule_name(rule).c_str(), S, static_cast<long long>(kBatch),
                static_cast<long long>(kHeads), static_cast<long long>(kHeadDim), "T", "Tc",
                "scan B/rank", "chunk-end B/rank", "halo+prefix B (all ranks)",
                "keys received (max)", "keys held / T");
  }
  CallTraffic previous_chunk_ends;
  for (const std::int64_t chunk : kChunks) {
    const std::int64_t T = S * chunk;
    SCOPED_TRACE(rule_name(rule) + ", Tc = " + std::to_string(chunk) + ", rank " +
                 std::to_string(rank) + " of " + std::to_string(S));
    ASSERT_GE(chunk, rule.initial + rule.window);  // halo_rows' premise
    const PassTraffic t = attention_traffic(sp, rule, chunk);
    // Nothing but the two exchanges.
    for (const Traffic* pass : {&t.forward, &t.backward})
      EXPECT_EQ(pass->total().calls, chunk_end_part(*pass).calls + halo_part(*pass).calls);

    // Chunk ends: cap rows per all-gather and per reduce-scatter block (file comment).
    const long long cap = chunk_end_capacity(rule.dilation, chunk);
    EXPECT_EQ(cap * kDilation, chunk);  // D divides Tc: no padding, so exactly T / (S D)
    const long long block = cap * kKeyRowBytes;
    EXPECT_EQ(chunk_end_part(t.forward),
              (CallTraffic{.calls = 1, .sent = block, .received = (S - 1) * block}));
    EXPECT_EQ(chunk_end_part(t.backward),
              (CallTraffic{.calls = 2, .sent = S * block, .received = 2 * (S - 1) * block}));
    const CallTraffic chunk_ends = chunk_end_part(t.both());
    if (chunk != kChunks.front()) {  // T doubled
      EXPECT_EQ(chunk_ends.sent, 2 * previous_chunk_ends.sent);
      EXPECT_EQ(chunk_ends.received, 2 * previous_chunk_ends.received);
    }
    previous_chunk_ends = chunk_ends;

    // Prefix and halo: the same rows at every T; the backward pass moves them twice.
    const CallTraffic forward_halo = halo_part(t.forward), backward_halo = halo_part(t.backward);
    EXPECT_EQ(forward_halo.sent, halo.sent * kKeyRowBytes);
    EXPECT_EQ(forward_halo.received, halo.received * kKeyRowBytes);
    EXPECT_EQ(backward_halo.sent, (halo.sent + halo.received) * kKeyRowBytes);
    EXPECT_EQ(backward_halo.received, (halo.sent + halo.received) * kKeyRowBytes);

    // Keys: what arrives in forward is the plan's keys_received, and far from all of T.
    const long long keys_received =
        (t.forward[MpiCall::all_gather].received + t.forward[MpiCall::recv].received) /
        kKeyRowBytes;
    EXPECT_EQ(keys_received, (S - 1) * cap + halo.received);
    EXPECT_EQ(keys_received, plan_dilated_keys(rule, rank, S, chunk).keys_received);
    EXPECT_LE(keys_received, rule.initial + rule.window + T / rule.dilation + S);
    EXPECT_LT(chunk + keys_received, T);

    const long long halo_bytes = sum_of(from_every_rank(sp, halo_part(t.both()).sent));
    EXPECT_EQ(halo_bytes, 3 * (S - 1) * (rule.initial + rule.window) * kKeyRowBytes);
    const std::vector<long long> received = from_every_rank(sp, keys_received);
    const long long most = *std::max_element(received.begin(), received.end());
    if (rank == 0) {
      std::printf("%6lld %4lld %12lld %17lld %26lld %20lld %10lld / %lld\n",
                  static_cast<long long>(T), static_cast<long long>(chunk), scan_bytes,
                  chunk_ends.sent, halo_bytes, most, chunk + most, static_cast<long long>(T));
    }
  }
}

TEST(SpTraffic, DilatedExchangeScalesAsTOverD) {
  for (const Sparsity& rule : kRules) check_attention_scaling(rule);
}

constexpr std::int64_t kVocab = 32;

ModelConfig two_layer_config() {
  ModelConfig c;
  c.vocab_size = kVocab;
  c.d_model = kChannels;
  c.num_heads = kHeads;
  c.num_layers = 2;
  c.sparse_rules = {std::begin(kRules), std::end(kRules)};
  return c;
}

// One forward_backward of the two-layer model in sparse mode on this rank's (B, Tc) tokens.
Traffic model_traffic(const ParallelContext& ctx, std::int64_t chunk) {
  RatLM model(two_layer_config(), kDtype, Device::cpu, false, ctx);
  model.params().initialize(5, 0.3);
  Tensor ids = Tensor::empty({kBatch, chunk}, DType::i32);
  Tensor labels = Tensor::empty({kBatch, chunk}, DType::i32);
  for (std::int64_t i = 0; i < ids.numel(); ++i) {
    ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % kVocab);
    labels.data<std::int32_t>()[i] = static_cast<std::int32_t>((i + 1) % kVocab);
  }
  return test::traffic_of(
      [&] { model.forward_backward(ids, labels, AttentionMode::sparse, 1.0); });
}

// What one layer of each rule sends when its mixer's exchanges run alone, summed.
Traffic mixer_exchanges(const Group& sp, std::int64_t chunk) {
  Traffic sum;
  for (const Sparsity& rule : kRules) {
    sum += scan_traffic(sp, chunk).both();
    sum += attention_traffic(sp, rule, chunk).both();
  }
  return sum;
}

TEST(SpTraffic, ModelLayerSendsOnlyTheMixerExchanges) {
  const Group world = sp_world();
  const ParallelContext ctx = ParallelContext::create(world, {.sp = world.size()});
  const std::int64_t chunk = 16;
  const Traffic at_t = model_traffic(ctx, chunk), at_2t = model_traffic(ctx, 2 * chunk);
  EXPECT_EQ(at_t, mixer_exchanges(ctx.sp, chunk));
  EXPECT_EQ(at_2t, mixer_exchanges(ctx.sp, 2 * chunk));
  // 2T - T: only the chunk ends grow, by 2 layers x (S + 1)(cap(2 Tc) - cap(Tc)) rows.
  const long long growth = at_2t.total().sent - at_t.total().sent;
  const long long cap_growth =
      chunk_end_capacity(kDilation, 2 * chunk) - chunk_end_capacity(kDilation, chunk);
  EXPECT_EQ(growth, 2 * (world.size() + 1) * cap_growth * kKeyRowBytes);
  EXPECT_EQ(chunk_end_part(at_2t).sent - chunk_end_part(at_t).sent, growth);
}

}  // namespace
}  // namespace ratrain
