// Ring attention, the dense regime of sequence-parallel attention: the K, V blocks of the
// S chunks travel around the sp ring one hop per step, so every rank meets every block
// while holding two (the one it attends over and the one arriving). Rank r owns chunk r,
// positions [r Tc, (r + 1) Tc); at step s it holds the block of rank (r - s) mod S.
// Example, S = 3: rank 2 holds the blocks of ranks 2, 1, 0 at steps 0, 1, 2; rank 0 those
// of ranks 0, 2, 1, and attends only over its own.
//
// Forward: the partial (out, lse) of each block is merged into the running result by
// log-sum-exp (ops::attention_merge). A block of a later rank is skipped: under the
// causal rule each of its keys follows every query here. It still travels on, keeping
// the ring regular.
// Backward: the block travels with its dk, dv accumulators (a stack k, v, dk, dv); each
// rank adds its queries' terms (ops::attention_backward_keys accumulates) and dq
// accumulates locally. After the last step rank r holds the block of rank r + 1, so one
// more hop of the accumulators alone brings every block's dk, dv home.
//
// Correct for any rule (the key-set ops apply it by position), economical for the dense
// one; sp_attention_* use it for D = 1 only.
//
// Later refinements: with contiguous chunks rank r attends over r + 1 blocks, so the
// last rank works S times as long as the first. The zigzag split (rank r holding chunks
// r and 2S - 1 - r of 2S) balances the causal work. On GPUs the next block's transfer
// would overlap the current block's compute; here send/recv block.
//
// Device-agnostic: the blocks, partial results and positions are made on the operands'
// device (partial lse in lse's dtype: f32 on the GPU), so the same code runs on host
// f32 / f64 and device bf16 / f32 tensors.
#include <utility>

#include "kernels/ops.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_rows.hpp"

namespace ratrain {
namespace {

// Sends `outgoing` to the next rank of the ring and receives `incoming` from the previous
// one. The calls block, so even ranks send first and odd ranks receive first: every send
// meets a posted receive. With S odd, ranks S - 1 and 0 are both even: the send of S - 1
// completes once rank 0, done sending to rank 1 (which receives first), posts its receive.
// A ring of one passes the block to itself.
void pass_along_ring(const Group& sp, const Tensor& outgoing, Tensor& incoming) {
  if (sp.size() == 1) return incoming.copy_from(outgoing);
  const int next = (sp.rank() + 1) % sp.size();
  const int previous = (sp.rank() + sp.size() - 1) % sp.size();
  if (sp.rank() % 2 == 0) {
    sp.send(outgoing, next);
    sp.recv(incoming, previous);
  } else {
    sp.recv(incoming, previous);
    sp.send(outgoing, next);
  }
}

// The rank whose block this rank holds at `step`.
int block_owner(const Group& sp, int step) { return (sp.rank() - step + sp.size()) % sp.size(); }

// The block this rank starts the ring with: a stack (parts, B, Tc, H, dh) of its k and
// v in parts 0 and 1, zeros after (backward's dk, dv accumulators).
Tensor first_block(std::int64_t parts, const Tensor& k, const Tensor& v) {
  Tensor block = zero_stack(parts, k, k.dim(1));
  stack_part(block, 0).copy_from(k);
  stack_part(block, 1).copy_from(v);
  return block;
}

// Positions (Tc) of `owner`'s chunk, i32 on `device`.
Tensor chunk_positions(int owner, std::int64_t chunk, Device device) {
  return position_tensor(indices_of({owner * chunk, (owner + 1) * chunk}), device);
}

}  // namespace

void ring_attention_forward(const Group& sp, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Sparsity& rule, Tensor& out, Tensor& lse) {
  require_chunk_operands(sp.size(), q, {{&k, "k"}, {&v, "v"}, {&out, "out"}},
                         "ring_attention_forward");
  const std::int64_t chunk = q.dim(1), q_begin = sp.rank() * chunk;
  ops::attention_forward_keys(q, q_begin, k, v, chunk_positions(sp.rank(), chunk, q.device()),
                              rule, out, lse);
  Tensor block = first_block(2, k, v);        // (2, B, Tc, H, dh): k, v of the block held
  Tensor incoming = zero_stack(2, k, chunk);  // (2, B, Tc, H, dh): the next block
  Tensor part_out = Tensor::empty(out.shape(), out.dtype(), out.device());  // (B, Tc, H, dh)
  Tensor part_lse = Tensor::empty(lse.shape(), lse.dtype(), lse.device());  // (B, H, Tc)
  for (int step = 1; step < sp.size(); ++step) {
    pass_along_ring(sp, block, incoming);
    std::swap(block, incoming);
    const int owner = block_owner(sp, step);
    if (owner > sp.rank()) continue;  // causal: every key follows every query here
    ops::attention_forward_keys(q, q_begin, stack_part(block, 0), stack_part(block, 1),
                                chunk_positions(owner, chunk, q.device()), rule, part_out,
                                part_lse);
    ops::attention_merge(out, lse, part_out, part_lse);
  }
}

void ring_attention_backward(const Group& sp, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& out, const Tensor& lse,
                             const Tensor& dout, const Sparsity& rule, Tensor& dq, Tensor& dk,
                             Tensor& dv) {
  require_chunk_operands(sp.size(), q,
                         {{&k, "k"}, {&v, "v"}, {&out, "out"}, {&dout, "dout"}, {&dq, "dq"},
                          {&dk, "dk"}, {&dv, "dv"}},
                         "ring_attention_backward");
  const std::int64_t chunk = q.dim(1), q_begin = sp.rank() * chunk;
  Tensor block = first_block(4, k, v);        // (4, B, Tc, H, dh): k, v, dk, dv
  Tensor incoming = zero_stack(4, k, chunk);  // (4, B, Tc, H, dh): the next block
  dq.zero();
  for (int step = 0; step < sp.size(); ++step) {
    if (step > 0) {
      pass_along_ring(sp, block, incoming);
      std::swap(block, incoming);
    }
    const int owner = block_owner(sp, step);
    if (owner > sp.rank()) continue;  // causal: no query here sees these keys
    Tensor block_dk = stack_part(block, 2), block_dv = stack_part(block, 3);
    ops::attention_backward_keys(q, q_begin, stack_part(block, 0), stack_part(block, 1),
                                 chunk_positions(owner, chunk, q.device()), out, lse, dout,
                                 rule, dq, block_dk, block_dv);
  }
  // The last hop: the accumulators alone, (2, B, Tc, H, dh) rows [2, 4) of the stacks.
  Tensor arriving = incoming.rows(2, 4);
  pass_along_ring(sp, block.rows(2, 4), arriving);
  dk.copy_from(stack_part(arriving, 0));
  dv.copy_from(stack_part(arriving, 1));
}

}  // namespace ratrain
