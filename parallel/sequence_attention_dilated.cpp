// Sequence-parallel attention under a dilated or local-only rule (D != 1). Each rank
// assembles the keys its queries can see (parallel/dilated_key_plan.hpp: prefix, chunk
// ends, halo, own chunk, a disjoint union by position) and runs one online softmax over
// them with ops::attention_forward_keys. Backward runs ops::attention_backward_keys
// over the same set and returns the gradients of borrowed keys to their owners, the
// mirror of each exchange:
//   prefix and halo  point to point, owner -> requester   <->  requester -> owner, added
//   chunk ends       all_gather of every rank's own ends  <->  reduce_scatter_sum, added
//
// Device-agnostic: every buffer (key set, messages, gradients, positions) is made on the
// operands' device and rows move with ops::copy_sequence_rows (through copy_rows), so
// the same code runs on host f32 / f64 and device bf16 / f32 tensors. Row copies are
// batched (one copy_rows per message or per owner of chunk ends), since on a GPU each is
// a kernel launch and a small upload of its row lists.
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/dilated_key_plan.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_rows.hpp"

namespace ratrain {
namespace {

// This rank's view of the key exchange: the group, the rule and this rank's plan.
struct Exchange {
  const Group& sp;
  const Sparsity& rule;
  std::int64_t chunk;  // Tc
  DilatedKeyPlan plan;

  int rank() const { return sp.rank(); }
  // Rows of this rank's (B, Tc, H, dh) tensors for positions of its chunk.
  std::vector<std::int64_t> chunk_rows(const std::vector<std::int64_t>& positions) const {
    std::vector<std::int64_t> rows;
    for (const std::int64_t j : positions) rows.push_back(j - plan.own.begin);
    return rows;
  }
  // Rows of the assembled key set for positions in it.
  std::vector<std::int64_t> set_rows(const std::vector<std::int64_t>& positions) const {
    std::vector<std::int64_t> rows;
    for (const std::int64_t j : positions) rows.push_back(plan.index_of(j));
    return rows;
  }
  std::vector<std::int64_t> own_positions() const { return indices_of(plan.own); }
  std::vector<std::int64_t> own_chunk_ends() const {
    return chunk_ends_in(plan.own, rule.dilation);
  }
  std::vector<std::int64_t> gap_chunk_ends() const {
    return chunk_ends_in(plan.gap, rule.dilation);
  }
};

Exchange exchange_of(const Group& sp, const Sparsity& rule, const Tensor& q) {
  const std::int64_t chunk = q.dim(1);
  return {sp, rule, chunk, plan_dilated_keys(rule, sp.rank(), sp.size(), chunk)};
}

// ---- the point-to-point exchange of prefix and halo keys ---------------------------------

// Which way the point-to-point messages of an exchange go.
enum class Flow { to_requesters, to_owners };

// Rows of a buffer for positions: Exchange::chunk_rows or Exchange::set_rows.
using RowsOf = std::vector<std::int64_t> (Exchange::*)(const std::vector<std::int64_t>&) const;

// The point-to-point part of an exchange. For every pair (owner, requester) with keys
// between them (exchanged_positions), the sender copies rows sent_rows(positions) of
// `source` into one message (2, B, n, H, dh) and the receiver copies it into rows
// received_rows(positions) of `target` (assigning or adding).
//
// Blocking send/recv (group.hpp): step d = 1 .. S-1 pairs each rank s with s + d, and a
// rank first sends its message of the step, then receives. Every message of one flow
// goes the same way along the rank order, so the last rank that way only receives,
// which releases the rank sending to it, and so on back along the chain: no cycle of
// waiting ranks. Both sides skip a pair with nothing to exchange by the same arithmetic.
void point_to_point(const Exchange& ex, Flow flow, const TensorPair& source, RowsOf sent_rows,
                    const TensorPair& target, RowsOf received_rows, Combine how) {
  const int me = ex.rank(), ranks = ex.sp.size();
  const int ahead = flow == Flow::to_requesters ? 1 : -1;  // where messages go
  const auto positions_between = [&](int sender, int receiver) {
    return flow == Flow::to_requesters ? exchanged_positions(ex.rule, ex.chunk, sender, receiver)
                                       : exchanged_positions(ex.rule, ex.chunk, receiver, sender);
  };
  for (int d = 1; d < ranks; ++d) {
    if (const int receiver = me + ahead * d; 0 <= receiver && receiver < ranks) {
      const auto positions = positions_between(me, receiver);
      const std::int64_t count = std::int64_t(positions.size());
      if (count > 0) {
        const Tensor message = zero_stack(2, source.first, count);  // (2, B, n, H, dh)
        copy_rows(source, (ex.*sent_rows)(positions), stack_pair(message, 0),
                  indices_of({0, count}), Combine::assign);
        ex.sp.send(message, receiver);
      }
    }
    if (const int sender = me - ahead * d; 0 <= sender && sender < ranks) {
      const auto positions = positions_between(sender, me);
      const std::int64_t count = std::int64_t(positions.size());
      if (count > 0) {
        Tensor message = zero_stack(2, target.first, count);  // (2, B, n, H, dh)
        ex.sp.recv(message, sender);
        copy_rows(stack_pair(message, 0), indices_of({0, count}), target,
                  (ex.*received_rows)(positions), how);
      }
    }
  }
}

// ---- the chunk ends of the gap, in the all-gathered stacks ------------------------------

// The chunk ends of this rank's gap that one owner holds: their slots in the owner's part
// of the all-gathered stacks (ChunkEndSlot::index) and their rows in the assembled key set.
struct OwnerChunkEnds {
  int owner;
  std::vector<std::int64_t> slots, set_rows;
};

// The gap's chunk ends grouped by owner, so that each owner's rows move in one copy_rows.
// The ends increase, so their owners (j / Tc) do not decrease and each owner is one run.
std::vector<OwnerChunkEnds> gap_chunk_ends_by_owner(const Exchange& ex) {
  std::vector<OwnerChunkEnds> groups;
  for (const std::int64_t j : ex.gap_chunk_ends()) {
    const ChunkEndSlot slot = chunk_end_slot(j, ex.rule.dilation, ex.chunk);
    if (groups.empty() || groups.back().owner != slot.owner) groups.push_back({slot.owner, {}, {}});
    groups.back().slots.push_back(slot.index);
    groups.back().set_rows.push_back(ex.plan.index_of(j));
  }
  return groups;
}

// ---- forward: assemble the key set ------------------------------------------------------

// The chunk ends of the gap, from one all-gather of every rank's own chunk ends, into
// `set`. Each rank contributes chunk_end_capacity rows, zero padded.
void fetch_chunk_ends(const Exchange& ex, const TensorPair& kv, const TensorPair& set) {
  const std::int64_t capacity = chunk_end_capacity(ex.rule.dilation, ex.chunk);
  if (capacity == 0) return;  // local-only rule: no chunk ends
  const Tensor mine = zero_stack(2, kv.first, capacity);  // (2, B, capacity, H, dh): k, v
  const auto own_ends = ex.own_chunk_ends();
  copy_rows(kv, ex.chunk_rows(own_ends), stack_pair(mine, 0),
            indices_of({0, std::int64_t(own_ends.size())}), Combine::assign);
  const Tensor all = ex.sp.all_gather(mine);  // (S * 2, B, capacity, H, dh)
  for (const OwnerChunkEnds& ends : gap_chunk_ends_by_owner(ex))
    copy_rows(stack_pair(all, 2 * ends.owner), ends.slots, set, ends.set_rows, Combine::assign);
}

// k, v (B, n, H, dh) of the assembled keys and their positions (n).
struct KeySet {
  TensorPair kv;
  Tensor positions;
};

KeySet assemble_keys(const Exchange& ex, const Tensor& k, const Tensor& v) {
  const std::int64_t keys = std::int64_t(ex.plan.positions.size());
  const Shape shape{k.dim(0), keys, k.dim(2), k.dim(3)};
  KeySet set{{Tensor::empty(shape, k.dtype(), k.device()),
              Tensor::empty(shape, k.dtype(), k.device())},
             position_tensor(ex.plan.positions, k.device())};
  const TensorPair kv{k, v};
  const auto own = ex.own_positions();
  copy_rows(kv, ex.chunk_rows(own), set.kv, ex.set_rows(own), Combine::assign);
  // Prefix and halo keys from the earlier ranks that own them.
  point_to_point(ex, Flow::to_requesters, kv, &Exchange::chunk_rows, set.kv, &Exchange::set_rows,
                 Combine::assign);
  fetch_chunk_ends(ex, kv, set.kv);
  return set;
}

// ---- backward: return the gradients of borrowed keys -----------------------------------

// The mirror of fetch_chunk_ends: every rank places the gradients of the chunk ends it
// borrowed in their owners' slots, and a reduce-scatter sums each owner's slots.
void return_chunk_ends(const Exchange& ex, const TensorPair& set_grads, const TensorPair& grads) {
  const std::int64_t capacity = chunk_end_capacity(ex.rule.dilation, ex.chunk);
  if (capacity == 0) return;
  const Tensor all = zero_stack(2 * ex.sp.size(), grads.first, capacity);  // (S * 2, B, cap, H, dh)
  for (const OwnerChunkEnds& ends : gap_chunk_ends_by_owner(ex))
    copy_rows(set_grads, ends.set_rows, stack_pair(all, 2 * ends.owner), ends.slots,
              Combine::assign);
  const Tensor mine = ex.sp.reduce_scatter_sum(all);  // (2, B, capacity, H, dh): dk, dv
  const auto own_ends = ex.own_chunk_ends();
  copy_rows(stack_pair(mine, 0), indices_of({0, std::int64_t(own_ends.size())}), grads,
            ex.chunk_rows(own_ends), Combine::add);
}

}  // namespace

void dilated_sp_attention_forward(const Group& sp, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Sparsity& rule, Tensor& out,
                                  Tensor& lse) {
  require_chunk_operands(sp.size(), q, {{&k, "k"}, {&v, "v"}, {&out, "out"}},
                         "dilated_sp_attention_forward");
  const Exchange ex = exchange_of(sp, rule, q);
  const KeySet set = assemble_keys(ex, k, v);
  ops::attention_forward_keys(q, ex.plan.own.begin, set.kv.first, set.kv.second, set.positions,
                              rule, out, lse);
}

void dilated_sp_attention_backward(const Group& sp, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& out, const Tensor& lse,
                                   const Tensor& dout, const Sparsity& rule, Tensor& dq,
                                   Tensor& dk, Tensor& dv) {
  require_chunk_operands(sp.size(), q,
                         {{&k, "k"}, {&v, "v"}, {&out, "out"}, {&dout, "dout"}, {&dq, "dq"},
                          {&dk, "dk"}, {&dv, "dv"}},
                         "dilated_sp_attention_backward");
  const Exchange ex = exchange_of(sp, rule, q);
  const KeySet set = assemble_keys(ex, k, v);
  const Shape& set_shape = set.kv.first.shape();  // (B, n, H, dh)
  TensorPair set_grads{Tensor::zeros(set_shape, k.dtype(), k.device()),
                       Tensor::zeros(set_shape, k.dtype(), k.device())};
  dq.zero();
  ops::attention_backward_keys(q, ex.plan.own.begin, set.kv.first, set.kv.second, set.positions,
                               out, lse, dout, rule, dq, set_grads.first, set_grads.second);
  // This rank's own keys first (assign), then the borrowed ones' returns (add).
  const TensorPair grads{dk, dv};
  const auto own = ex.own_positions();
  copy_rows(set_grads, ex.set_rows(own), grads, ex.chunk_rows(own), Combine::assign);
  // Gradients of prefix and halo keys back to their owners, who add them.
  point_to_point(ex, Flow::to_owners, set_grads, &Exchange::set_rows, grads,
                 &Exchange::chunk_rows, Combine::add);
  return_chunk_ends(ex, set_grads, grads);
}

}  // namespace ratrain
