// The sequence split (parallel/sequence_split.hpp) as pure arithmetic: local row ->
// global position under both splits against hand-written lists (the header's worked
// example), the chunk owners in global order (the order the recurrence's folds take with
// two chunks per rank), the token reorder to piece-major, which split a pass takes, and
// the balance of ring attention's causal work: the (query, key) pairs a rank's ring
// steps compute (ring_step_pairs) are the same on every rank under zigzag, and grow as
// r + 1/2 under the contiguous split.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "parallel/sequence_split.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

std::vector<std::int64_t> positions_of(const SequencePieces& pieces) {
  std::vector<std::int64_t> out;
  for (std::int64_t t = 0; t < pieces.count * pieces.length; ++t)
    out.push_back(pieces.position(t));
  return out;
}

TEST(SequenceSplit, LocalColumnsMapToGlobalPositions) {
  // T = 16, S = 2 (the header's example).
  EXPECT_EQ(positions_of({SequenceSplit::zigzag, 0, 2, 8}),
            (std::vector<std::int64_t>{0, 1, 2, 3, 12, 13, 14, 15}));
  EXPECT_EQ(positions_of({SequenceSplit::zigzag, 1, 2, 8}),
            (std::vector<std::int64_t>{4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(positions_of({SequenceSplit::contiguous, 1, 2, 8}),
            (std::vector<std::int64_t>{8, 9, 10, 11, 12, 13, 14, 15}));
  // T = 24, S = 3, zigzag: 6 chunks of 4; rank 1 holds chunks 1 and 4.
  EXPECT_EQ(positions_of({SequenceSplit::zigzag, 1, 3, 8}),
            (std::vector<std::int64_t>{4, 5, 6, 7, 16, 17, 18, 19}));
  const SequencePieces p(SequenceSplit::zigzag, 1, 3, 8);
  EXPECT_EQ(p.count, 2);
  EXPECT_EQ(p.length, 4);
  EXPECT_EQ(p.chunk(0), 1);
  EXPECT_EQ(p.chunk(1), 4);
  EXPECT_EQ(p.begin(1), 16);
}

// Every position of the sequence is held exactly once, for both splits and several S.
TEST(SequenceSplit, RanksPartitionTheSequence) {
  for (const SequenceSplit split : {SequenceSplit::contiguous, SequenceSplit::zigzag})
    for (const int ranks : {1, 2, 3, 4, 8}) {
      const std::int64_t local = 6, seq = ranks * local;
      std::vector<int> held(static_cast<std::size_t>(seq), 0);
      for (int r = 0; r < ranks; ++r)
        for (const std::int64_t pos : positions_of({split, r, ranks, local}))
          ++held[static_cast<std::size_t>(pos)];
      for (std::int64_t pos = 0; pos < seq; ++pos)
        EXPECT_EQ(held[static_cast<std::size_t>(pos)], 1)
            << sequence_split_name(split) << " S=" << ranks << " position " << pos;
    }
}

// The recurrence folds chunk summaries in global chunk order; with two chunks per rank
// that order visits rank 0, 1, ..., S-1 (their first pieces) and then S-1, ..., 0 (their
// second pieces).
TEST(SequenceSplit, ChunkOwnersInGlobalOrder) {
  const SequencePieces zigzag(SequenceSplit::zigzag, 0, 3, 4);
  std::vector<ChunkOwner> owners;
  for (int c = 0; c < zigzag.chunks(); ++c) owners.push_back(chunk_owner(zigzag, c));
  EXPECT_EQ(owners, (std::vector<ChunkOwner>{{0, 0}, {1, 0}, {2, 0}, {2, 1}, {1, 1}, {0, 1}}));
  // Each owner's piece is that chunk.
  for (int c = 0; c < zigzag.chunks(); ++c) {
    const ChunkOwner o = chunk_owner(zigzag, c);
    EXPECT_EQ(zigzag.of_rank(o.rank).chunk(o.piece), c);
  }
  const SequencePieces contiguous(SequenceSplit::contiguous, 0, 3, 4);
  for (int c = 0; c < contiguous.chunks(); ++c)
    EXPECT_EQ(chunk_owner(contiguous, c), (ChunkOwner{c, 0}));
}

TEST(SequenceSplit, TokensGoPieceMajor) {
  // B = 2, Tc = 6, two pieces of 3: (B, 2, 3) -> (2, B, 3).
  Tensor tokens = Tensor::empty({2, 6}, DType::i32);
  std::iota(tokens.data<std::int32_t>(), tokens.data<std::int32_t>() + 12, 0);
  const Tensor out = piece_major_tokens(tokens, 2);
  const std::vector<std::int32_t> got(out.data<std::int32_t>(), out.data<std::int32_t>() + 12);
  EXPECT_EQ(got, (std::vector<std::int32_t>{0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11}));
}

TEST(SequenceSplit, ZigzagOnlyForDensePassesOverSeveralRanks) {
  const std::vector<Sparsity> dense(3, Sparsity::dense());
  std::vector<Sparsity> hybrid = dense;
  hybrid[1] = {4, 2, 0};
  EXPECT_EQ(pass_split(SequenceSplit::zigzag, 2, dense), SequenceSplit::zigzag);
  EXPECT_EQ(pass_split(SequenceSplit::zigzag, 2, hybrid), SequenceSplit::contiguous);
  EXPECT_EQ(pass_split(SequenceSplit::zigzag, 1, dense), SequenceSplit::contiguous);
  EXPECT_EQ(pass_split(SequenceSplit::contiguous, 4, dense), SequenceSplit::contiguous);
}

TEST(SequenceSplit, ErrorsNameTheKeys) {
  const std::string odd = error_of([] { SequencePieces(SequenceSplit::zigzag, 0, 2, 7); });
  EXPECT_NE(odd.find("train.seq_len"), std::string::npos) << odd;
  EXPECT_NE(odd.find("parallel.sp_split"), std::string::npos) << odd;
  const std::string bad = error_of([] { parse_sequence_split("zagzig", "parallel.sp_split"); });
  EXPECT_NE(bad.find("parallel.sp_split"), std::string::npos) << bad;
  EXPECT_NE(bad.find("contiguous, zigzag"), std::string::npos) << bad;
  EXPECT_EQ(parse_sequence_split("contiguous", "k"), SequenceSplit::contiguous);
  EXPECT_EQ(parse_sequence_split("zigzag", "k"), SequenceSplit::zigzag);
}

// The causal (query, key) pairs rank `rank` computes over a whole ring (every owner's
// block), counted from the pieces' positions the way the key-set ops see them; also
// checks that no visible pair is skipped.
std::int64_t ring_work(const SequencePieces& here) {
  std::int64_t pairs = 0;
  for (int owner = 0; owner < here.ranks; ++owner) {
    const SequencePieces keys = here.of_rank(owner);
    const std::vector<PiecePair> computed = ring_step_pairs(here, keys);
    for (int i = 0; i < here.count; ++i)
      for (int j = 0; j < keys.count; ++j) {
        std::int64_t visible = 0;
        for (std::int64_t a = 0; a < here.length; ++a)
          for (std::int64_t b = 0; b < keys.length; ++b)
            visible += is_visible(Sparsity::dense(), here.begin(i) + a, keys.begin(j) + b);
        const bool listed =
            std::find(computed.begin(), computed.end(), PiecePair{i, j}) != computed.end();
        EXPECT_TRUE(listed || visible == 0) << "rank " << here.rank << " owner " << owner;
        if (listed) pairs += visible;
      }
  }
  return pairs;
}

TEST(SequenceSplit, ZigzagBalancesRingAttentionsCausalWork) {
  for (const int ranks : {2, 3, 4, 8}) {
    const std::int64_t local = 8, half = local / 2, seq = ranks * local;
    std::int64_t total_zigzag = 0, total_contiguous = 0;
    for (int r = 0; r < ranks; ++r) {
      const std::int64_t zigzag = ring_work({SequenceSplit::zigzag, r, ranks, local});
      const std::int64_t contiguous = ring_work({SequenceSplit::contiguous, r, ranks, local});
      // Zigzag: (2S - 1) full L x L blocks and two diagonals on every rank.
      EXPECT_EQ(zigzag, (2 * ranks - 1) * half * half + half * (half + 1)) << "S=" << ranks;
      // Contiguous: r full Tc x Tc blocks and one diagonal, about (r + 1/2) Tc^2.
      EXPECT_EQ(contiguous, r * local * local + local * (local + 1) / 2) << "S=" << ranks;
      total_zigzag += zigzag;
      total_contiguous += contiguous;
    }
    EXPECT_EQ(total_zigzag, seq * (seq + 1) / 2);  // every causal pair once
    EXPECT_EQ(total_contiguous, seq * (seq + 1) / 2);
  }
}

}  // namespace
}  // namespace ratrain
