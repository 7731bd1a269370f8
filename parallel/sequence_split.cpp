// The piece arithmetic of sequence_split.hpp (see its header for the worked example).
#include "parallel/sequence_split.hpp"

#include <algorithm>

#include "runtime/error.hpp"

namespace ratrain {

SequencePieces::SequencePieces(SequenceSplit how, int rank_in_group, int group_size,
                               std::int64_t local_length)
    : split(how),
      rank(rank_in_group),
      ranks(group_size),
      count(pieces_per_rank(how)),
      length(local_length / count) {
  RT_REQUIRE(ranks >= 1 && rank >= 0 && rank < ranks, "sequence rank ", rank,
             " is outside a group of ", ranks);
  RT_REQUIRE(local_length > 0 && local_length % count == 0, "the zigzag split "
             "(parallel.sp_split = zigzag) cuts each sample into 2 * parallel.sp = ", 2 * ranks,
             " chunks, so train.seq_len must be divisible by ", 2 * ranks, " (each rank holds ",
             local_length, " positions); choose another train.seq_len or parallel.sp, or "
             "parallel.sp_split = contiguous");
}

SequencePieces SequencePieces::of_operand(SequenceSplit split, int rank, int ranks,
                                          const Tensor& operand, int operand_rank,
                                          const char* op) {
  const SequencePieces pieces = with_piece_length(split, rank, ranks, operand.dim(1));
  RT_REQUIRE(operand.rank() == operand_rank && operand.dim(0) % pieces.count == 0, op, ": ",
             sequence_split_name(split), " operands must be piece-major (", pieces.count,
             " B, L, ...) of rank ", operand_rank, ", got ", shape_str(operand.shape()));
  return pieces;
}

ChunkOwner chunk_owner(const SequencePieces& pieces, int chunk) {
  RT_ASSERT(chunk >= 0 && chunk < pieces.chunks());
  if (chunk < pieces.ranks) return {chunk, 0};
  return {pieces.chunks() - 1 - chunk, 1};
}

SequenceSplit pass_split(SequenceSplit requested, int sp_size, const std::vector<Sparsity>& rules) {
  if (sp_size == 1) return SequenceSplit::contiguous;
  const bool dense = std::all_of(rules.begin(), rules.end(),
                                 [](const Sparsity& rule) { return rule.is_dense(); });
  return dense ? requested : SequenceSplit::contiguous;
}

Tensor piece_major_tokens(const Tensor& tokens, int count) {
  RT_REQUIRE(tokens.rank() == 2 && tokens.dtype() == DType::i32 && tokens.device() == Device::cpu,
             "piece_major_tokens takes a (B, Tc) int32 host tensor, got ",
             shape_str(tokens.shape()), " ", dtype_name(tokens.dtype()));
  RT_ASSERT(count >= 1 && tokens.dim(1) % count == 0);
  Tensor out = Tensor::empty(tokens.shape(), DType::i32);
  const std::int64_t batch = tokens.dim(0), length = tokens.dim(1) / count;
  const std::int32_t* in = tokens.data<std::int32_t>();
  std::int32_t* o = out.data<std::int32_t>();
  // Token order (B, count, L) -> piece-major (count, B, L).
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t i = 0; i < count; ++i)
      std::copy_n(in + (b * count + i) * length, length, o + (i * batch + b) * length);
  return out;
}

std::vector<PiecePair> ring_step_pairs(const SequencePieces& queries, const SequencePieces& keys) {
  RT_ASSERT(queries.split == keys.split && queries.length == keys.length);
  std::vector<PiecePair> pairs;
  for (int i = 0; i < queries.count; ++i)
    for (int j = 0; j < keys.count; ++j)
      if (keys.begin(j) <= queries.begin(i) + queries.length - 1) pairs.push_back({i, j});
  return pairs;
}

}  // namespace ratrain
