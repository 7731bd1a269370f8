// Ring attention, the dense regime of sequence-parallel attention: the K, V blocks of the
// S ranks travel around the sp ring one hop per step, so every rank meets every block
// while holding two (the one it attends over and the one arriving). Rank r's block is its
// pieces (parallel/sequence_split.hpp): contiguous, chunk r, positions [r Tc, (r + 1) Tc);
// zigzag, chunks r and 2S - 1 - r of L = Tc / 2 positions, piece-major. At step s it
// holds the block of rank (r - s) mod S. Example, S = 3: rank 2 holds the blocks of ranks
// 2, 1, 0 at steps 0, 1, 2; rank 0 those of ranks 0, 2, 1.
//
// At each step a rank's queries meet the held block piece by piece: one key-set op call
// per (query piece, key piece) pair of ring_step_pairs, each a contiguous (B, L, H, dh)
// row range of the piece-major operands with the pieces' global positions (q_begin and
// the key positions), so no copies. A pair whose keys all follow its queries is skipped
// (under the causal rule no query sees them): contiguous, a block of a later rank; zigzag,
// the first piece of the queries meets only the first piece of an earlier rank's block,
// and nothing of a later rank's, while the second piece of the queries sees every block.
// Example, zigzag S = 2 (chunks of L: rank 0 holds 0 and 3, rank 1 holds 1 and 2): rank 0
// computes at step 0 (0,0) diagonal, (3,0) full, (3,3) diagonal; at step 1 (3,1), (3,2)
// full. Rank 1 at step 0 (1,1) diagonal, (2,1) full, (2,2) diagonal; at step 1 (1,0),
// (2,0) full. Both compute 2 diagonals and 3 full L x L blocks.
//
// Forward: the partial (out, lse) of each pair is merged into its query piece's running
// result by log-sum-exp (ops::attention_merge). Skipped blocks still travel on, keeping
// the ring regular.
// Backward: the k, v blocks travel as in the forward; each block's dk, dv accumulators
// follow one step behind. At step s a rank adds its queries' terms for the block it
// holds into a scratch (ops::attention_backward_keys, one call per pair), receives the block's
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
// one; sp_attention_* use it for D = 1 only. With contiguous chunks rank r attends over
// r + 1 blocks, so the last rank works about 2S - 1 times as long as the first; the
// zigzag split gives every rank the same causal work (sequence_split.hpp).
//
// Device-agnostic: the blocks, partial results and positions are made on the operands'
// device (partial lse in lse's dtype: f32 on the GPU), so the same code runs on host
// f32 / f64 and device bf16 / f32 tensors.
#include <utility>
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_rows.hpp"
#include "parallel/sequence_split.hpp"

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

// This rank's pieces, for piece-major operands (count B, L, H, dh) like q.
SequencePieces pieces_of(const Group& sp, SequenceSplit split, const Tensor& q, const char* op) {
  return SequencePieces::of_operand(split, sp.rank(), sp.size(), q, 4, op);
}

// The block this rank starts the ring with: a stack (2, count B, L, H, dh) of its k and v.
Tensor first_block(const Tensor& k, const Tensor& v) {
  Tensor block = zero_stack(2, k, k.dim(1));
  stack_part(block, 0).copy_from(k);
  stack_part(block, 1).copy_from(v);
  return block;
}

// Positions (L) of piece `piece` of `pieces`, i32 on `device`.
Tensor piece_positions(const SequencePieces& pieces, int piece, Device device) {
  return position_tensor(indices_of({pieces.begin(piece), pieces.begin(piece) + pieces.length}),
                         device);
}

}  // namespace

void ring_attention_forward(const Group& sp, SequenceSplit split, const Tensor& q,
                            const Tensor& k, const Tensor& v, const Sparsity& rule, Tensor& out,
                            Tensor& lse) {
  require_chunk_operands(sp.size(), q, {{&k, "k"}, {&v, "v"}, {&out, "out"}},
                         "ring_attention_forward");
  const SequencePieces here = pieces_of(sp, split, q, "ring_attention_forward");
  const RingNeighbours ring(sp);
  Tensor block = first_block(k, v);                 // (2, count B, L, H, dh): the block held
  Tensor incoming = zero_stack(2, k, here.length);  // (2, count B, L, H, dh): the next block
  const Tensor out_0 = here.rows_of(out, 0), lse_0 = here.rows_of(lse, 0);
  Tensor part_out = Tensor::empty(out_0.shape(), out.dtype(), out.device());  // (B, L, H, dh)
  Tensor part_lse = Tensor::empty(lse_0.shape(), lse.dtype(), lse.device());  // (B, H, L)
  // Whether a query piece's running result holds a first part (step 0 gives every piece
  // its own diagonal pair).
  std::vector<char> started(static_cast<std::size_t>(here.count), 0);
  for (int step = 0; step < sp.size(); ++step) {
    CollectiveRequest arriving;
    if (step + 1 < sp.size()) arriving = sp.shift_async(block, ring.next, incoming, ring.previous);
    const SequencePieces keys = here.of_rank(block_owner(sp, step));
    for (const PiecePair& pair : ring_step_pairs(here, keys)) {
      const Tensor q_i = here.rows_of(q, pair.query);
      const Tensor k_j = keys.rows_of(stack_part(block, 0), pair.key),
                   v_j = keys.rows_of(stack_part(block, 1), pair.key);
      const Tensor positions = piece_positions(keys, pair.key, q.device());
      Tensor out_i = here.rows_of(out, pair.query), lse_i = here.rows_of(lse, pair.query);
      char& first = started[static_cast<std::size_t>(pair.query)];
      if (!first) {
        ops::attention_forward_keys(q_i, here.begin(pair.query), k_j, v_j, positions, rule, out_i,
                                    lse_i);
        first = 1;
      } else {
        ops::attention_forward_keys(q_i, here.begin(pair.query), k_j, v_j, positions, rule,
                                    part_out, part_lse);
        ops::attention_merge(out_i, lse_i, part_out, part_lse);
      }
    }
    arriving.wait();
    std::swap(block, incoming);
  }
  for (const char first : started) RT_ASSERT(first);
}

void ring_attention_backward(const Group& sp, SequenceSplit split, const Tensor& q,
                             const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv) {
  require_chunk_operands(sp.size(), q,
                         {{&k, "k"}, {&v, "v"}, {&out, "out"}, {&dout, "dout"}, {&dq, "dq"},
                          {&dk, "dk"}, {&dv, "dv"}},
                         "ring_attention_backward");
  const SequencePieces here = pieces_of(sp, split, q, "ring_attention_backward");
  const std::int64_t length = here.length;
  const RingNeighbours ring(sp);
  // Stacks (2, count B, L, H, dh):
  Tensor block = first_block(k, v);                  // k, v of the block held
  Tensor incoming = zero_stack(2, k, length);        // the next k, v block
  Tensor grads = zero_stack(2, k, length);           // dk, dv accumulators of the block held
  Tensor grads_incoming = zero_stack(2, k, length);  // those of the next block
  Tensor terms = zero_stack(2, k, length);           // this rank's dk, dv terms for the block
  CollectiveRequest grads_arriving;
  dq.zero();
  for (int step = 0; step < sp.size(); ++step) {
    CollectiveRequest arriving;
    if (step + 1 < sp.size()) arriving = sp.shift_async(block, ring.next, incoming, ring.previous);
    const SequencePieces keys = here.of_rank(block_owner(sp, step));
    // Causal: the pairs whose queries see some key of the block.
    const std::vector<PiecePair> pairs = ring_step_pairs(here, keys);
    // The block's own rank starts its accumulators (zeros); the others add to them.
    Tensor& into = step == 0 ? grads : terms;
    if (!pairs.empty() && step > 0) terms.zero();
    for (const PiecePair& pair : pairs) {
      const Tensor positions = piece_positions(keys, pair.key, q.device());
      Tensor dq_i = here.rows_of(dq, pair.query);
      Tensor dk_j = keys.rows_of(stack_part(into, 0), pair.key),
             dv_j = keys.rows_of(stack_part(into, 1), pair.key);
      ops::attention_backward_keys(
          here.rows_of(q, pair.query), here.begin(pair.query),
          keys.rows_of(stack_part(block, 0), pair.key),
          keys.rows_of(stack_part(block, 1), pair.key), positions,
          here.rows_of(out, pair.query), here.rows_of(lse, pair.query),
          here.rows_of(dout, pair.query), rule, dq_i, dk_j, dv_j);
    }
    if (step > 0) {
      grads_arriving.wait();
      std::swap(grads, grads_incoming);
      if (!pairs.empty()) ops::add_inplace(grads, terms);
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
