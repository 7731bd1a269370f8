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
// Backward: the k, v blocks travel as in the forward; each block's dk, dv accumulators
// follow one step behind. At step s a rank adds its queries' terms for the block it
// holds into a scratch (ops::attention_backward_keys), receives the block's
// accumulators from the rank that worked on it at step s - 1, adds the scratch to them
// and sends them on; dq accumulates locally. After the last step one more hop of the
// accumulators brings every block's dk, dv home (rank r worked last on block r + 1).
//
// Overlap (Group::shift_async): the next k, v block travels while the current one is
// computed on (both only read it), and the accumulators sent at the end of step s travel
// during step s + 1's computation, so only the first block's wait and the last hop are
// exposed. On GPUs the transfers run on NCCL's stream beside the compute stream; over
// MPI without a progress thread they advance mostly at the waits.
//
// Correct for any rule (the key-set ops apply it by position), economical for the dense
// one; sp_attention_* use it for D = 1 only.
//
// Later refinement: with contiguous chunks rank r attends over r + 1 blocks, so the last
// rank works S times as long as the first. The zigzag split (rank r holding chunks r and
// 2S - 1 - r of 2S) balances the causal work.
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

// The ring's neighbours of this rank: blocks go to `next` and come from `previous`.
struct RingNeighbours {
  int next, previous;
  explicit RingNeighbours(const Group& sp)
      : next((sp.rank() + 1) % sp.size()), previous((sp.rank() + sp.size() - 1) % sp.size()) {}
};

// The rank whose block this rank holds at `step`.
int block_owner(const Group& sp, int step) { return (sp.rank() - step + sp.size()) % sp.size(); }

// The block this rank starts the ring with: a stack (2, B, Tc, H, dh) of its k and v.
Tensor first_block(const Tensor& k, const Tensor& v) {
  Tensor block = zero_stack(2, k, k.dim(1));
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
  const RingNeighbours ring(sp);
  Tensor block = first_block(k, v);        // (2, B, Tc, H, dh): k, v of the block held
  Tensor incoming = zero_stack(2, k, chunk);  // (2, B, Tc, H, dh): the next block
  Tensor part_out = Tensor::empty(out.shape(), out.dtype(), out.device());  // (B, Tc, H, dh)
  Tensor part_lse = Tensor::empty(lse.shape(), lse.dtype(), lse.device());  // (B, H, Tc)
  for (int step = 0; step < sp.size(); ++step) {
    CollectiveRequest arriving;
    if (step + 1 < sp.size()) arriving = sp.shift_async(block, ring.next, incoming, ring.previous);
    const int owner = block_owner(sp, step);
    if (step == 0) {
      ops::attention_forward_keys(q, q_begin, k, v, chunk_positions(owner, chunk, q.device()),
                                  rule, out, lse);
    } else if (owner < sp.rank()) {  // later ranks' keys all follow every query here
      ops::attention_forward_keys(q, q_begin, stack_part(block, 0), stack_part(block, 1),
                                  chunk_positions(owner, chunk, q.device()), rule, part_out,
                                  part_lse);
      ops::attention_merge(out, lse, part_out, part_lse);
    }
    arriving.wait();
    std::swap(block, incoming);
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
  const RingNeighbours ring(sp);
  Tensor block = first_block(k, v);            // (2, B, Tc, H, dh): k, v of the block held
  Tensor incoming = zero_stack(2, k, chunk);      // the next k, v block
  Tensor grads = zero_stack(2, k, chunk);         // dk, dv accumulators of the block held
  Tensor grads_incoming = zero_stack(2, k, chunk);  // those of the next block
  Tensor terms = zero_stack(2, k, chunk);         // this rank's dk, dv terms for the block
  CollectiveRequest grads_arriving;
  dq.zero();
  for (int step = 0; step < sp.size(); ++step) {
    CollectiveRequest arriving;
    if (step + 1 < sp.size()) arriving = sp.shift_async(block, ring.next, incoming, ring.previous);
    const int owner = block_owner(sp, step);
    const bool sees_block = owner <= sp.rank();  // causal: no query here sees later keys
    // The block's own rank starts its accumulators (zeros); the others add to them.
    Tensor& into = step == 0 ? grads : terms;
    if (sees_block) {
      if (step > 0) terms.zero();
      Tensor into_dk = stack_part(into, 0), into_dv = stack_part(into, 1);
      ops::attention_backward_keys(q, q_begin, stack_part(block, 0), stack_part(block, 1),
                                   chunk_positions(owner, chunk, q.device()), out, lse, dout,
                                   rule, dq, into_dk, into_dv);
    }
    if (step > 0) {
      grads_arriving.wait();
      std::swap(grads, grads_incoming);
      if (sees_block) ops::add_inplace(grads, terms);
    }
    // On to the next rank, which works on this block next step; the last step's send
    // takes every block home.
    grads_arriving = sp.shift_async(grads, ring.next, grads_incoming, ring.previous);
    arriving.wait();
    std::swap(block, incoming);
  }
  grads_arriving.wait();
  dk.copy_from(stack_part(grads_incoming, 0));
  dv.copy_from(stack_part(grads_incoming, 1));
}

}  // namespace ratrain
