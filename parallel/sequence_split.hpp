// Which positions of each sample a sequence-parallel rank holds, and in which order its
// rows keep them (DESIGN.md "Parallel layout", SP). Pure arithmetic: no MPI, no device.
//
// Rank r of S holds `count` pieces of L positions each, piece i the global chunk
// chunk(i), positions [chunk(i) L, (chunk(i) + 1) L):
//   contiguous  one piece, chunk r of S                (L = Tc = T / S)
//   zigzag      two pieces, chunks r and 2S - 1 - r of 2S  (L = Tc / 2; Tc must be even)
// Under the dense causal rule a contiguous rank r's queries see r Tc^2 + Tc (Tc + 1) / 2
// (query, key) pairs per sample, so the last rank works about 2S - 1 times as much as the
// first; a zigzag rank's see r L^2 + (2S - 1 - r) L^2 + L (L + 1) = (2S - 1) L^2 + L (L + 1),
// the same on every rank.
//
// Two row orders of the same positions:
// - token order: the (B, Tc) block that local_tokens cuts and the trainer hands the
//   model: per sample, piece 0's positions, then piece 1's ((B, count, L)).
// - piece-major: the model's activations of a micro-batch (model/rat_block.hpp): every
//   sample's piece 0, then every sample's piece 1 ((count, B, L)). Viewed as
//   (count * B, L, ...), piece i of sample b is batch row i B + b, and piece i is the
//   contiguous (B, L, ...) row range [i B, (i + 1) B): RoPE, the recurrence's chunks and
//   ring attention's query and key blocks are then plain views, with no copies.
// With one piece both orders are the same (B, Tc) block.
//
// Worked example: T = 16, S = 2, zigzag: 4 chunks of L = 4. Rank 0 holds chunks 0 and 3
// (positions 0-3 and 12-15), rank 1 chunks 1 and 2 (positions 4-7 and 8-11: adjacent,
// still two pieces). Chunk owners in global order: 0 -> rank 0 piece 0, 1 -> rank 1
// piece 0, 2 -> rank 1 piece 1, 3 -> rank 0 piece 1. Rank 0 with B = 2 samples s0, s1:
//   token order  s0: 0 1 2 3 12 13 14 15 | s1: 0 1 2 3 12 13 14 15
//   piece-major  s0: 0 1 2 3 | s1: 0 1 2 3 | s0: 12 13 14 15 | s1: 12 13 14 15
// so token-order column 5 of a sample is position 13 (piece 1, offset 1).
//
// The dilated and local-only rules (parallel/sequence_attention_dilated.cpp) assume one
// contiguous chunk per rank, and their work per query is nearly uniform anyway
// (P + T/D + W keys): a pass is split zigzag only when every layer's rule is dense
// (pass_split), so a joint schedule's sparse pass splits contiguously and its dense pass
// zigzag, each cutting its own tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/visibility.hpp"
#include "parallel/rank_layout.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// Pieces per rank under `split`: 1 (contiguous) or 2 (zigzag).
constexpr int pieces_per_rank(SequenceSplit split) {
  return split == SequenceSplit::zigzag ? 2 : 1;
}

// The pieces of rank `rank` of `ranks` under `split`, with `local_length` = Tc positions
// per sample on each rank.
struct SequencePieces {
  // Requires local_length divisible by the piece count (zigzag: even; the error names
  // train.seq_len, parallel.sp and parallel.sp_split).
  SequencePieces(SequenceSplit split, int rank, int ranks, std::int64_t local_length);
  // The same from the piece length L (the sequence dimension of piece-major operands).
  static SequencePieces with_piece_length(SequenceSplit split, int rank, int ranks,
                                          std::int64_t piece_length) {
    return {split, rank, ranks, piece_length * pieces_per_rank(split)};
  }
  // The pieces of piece-major operands like `operand`, (count B, L, ...) of rank
  // `operand_rank` (the sequence dimension 1 holds L): checked, the error naming `op`.
  static SequencePieces of_operand(SequenceSplit split, int rank, int ranks,
                                   const Tensor& operand, int operand_rank, const char* op);

  SequenceSplit split;
  int rank, ranks;
  int count;            // pieces per rank: 1 (contiguous) or 2 (zigzag)
  std::int64_t length;  // L, positions per piece

  // Chunks of a sample in all: count * ranks.
  int chunks() const { return count * ranks; }
  // The global chunk of piece `piece` (0 or count - 1).
  int chunk(int piece) const { return piece == 0 ? rank : chunks() - 1 - rank; }
  // The first global position of piece `piece`.
  std::int64_t begin(int piece) const { return chunk(piece) * length; }
  // The global position of token-order column `column` in [0, count * L).
  std::int64_t position(std::int64_t column) const {
    return begin(static_cast<int>(column / length)) + column % length;
  }
  // The same split for another rank of the group.
  SequencePieces of_rank(int other) const { return {split, other, ranks, count * length}; }
  // Piece `piece` of a piece-major (count B, ...) tensor: its (B, ...) rows, a view.
  Tensor rows_of(const Tensor& t, int piece) const {
    const std::int64_t batch = t.dim(0) / count;
    return t.rows(piece * batch, (piece + 1) * batch);
  }
};

// Which rank holds global chunk `chunk` (of pieces.chunks()), as which of its pieces:
// zigzag, chunk c < S: rank c, piece 0; c >= S: rank 2S - 1 - c, piece 1.
struct ChunkOwner {
  int rank, piece;
  bool operator==(const ChunkOwner&) const = default;
};
ChunkOwner chunk_owner(const SequencePieces& pieces, int chunk);

// The split a pass uses: `requested` when the sp group has several ranks and every
// layer's rule of the pass is dense, contiguous otherwise (see the header comment).
SequenceSplit pass_split(SequenceSplit requested, int sp_size, const std::vector<Sparsity>& rules);

// Token order -> piece-major: tokens (B, count * L) i32 on the host -> a new (B, count * L)
// host tensor whose flat rows are (count, B, L). A copy of `tokens` for one piece.
Tensor piece_major_tokens(const Tensor& tokens, int count);

// Ring attention (ring_attention.cpp): the (query piece, key piece) pairs of one ring step
// in which the queries of `queries` meet the block of `keys`, in order of query piece,
// then key piece: those where the key piece's first position is not after the query
// piece's last (under any rule no query sees a later key, so the others are skipped).
// Contiguous: the one pair when keys.rank <= queries.rank. Zigzag, rank r meeting rank o:
// o < r: (0, 0), (1, 0); o == r: (0, 0), (1, 0), (1, 1); o > r: (1, 0), (1, 1) — two
// pieces' worth of full L x L blocks at every step but the first.
struct PiecePair {
  int query, key;
  bool operator==(const PiecePair&) const = default;
};
std::vector<PiecePair> ring_step_pairs(const SequencePieces& queries, const SequencePieces& keys);

}  // namespace ratrain
