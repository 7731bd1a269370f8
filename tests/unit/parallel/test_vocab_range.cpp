// vocab_range (parallel/vocab_parallel.hpp), the pure split of the vocabulary rows over
// the tp group, against hand-written lists, plus the partition invariant (every row owned
// exactly once, sizes differing by at most one) and the errors that name the sizes.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "parallel/vocab_parallel.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {

// gtest's printer for a VocabRange in failure messages (found by ADL in its namespace).
void PrintTo(const VocabRange& r, std::ostream* os) {
  *os << "[" << r.begin << ", " << r.end << ")";
}

namespace {

std::vector<VocabRange> split(std::int64_t vocab, int parts) {
  std::vector<VocabRange> ranges;
  for (int part = 0; part < parts; ++part) ranges.push_back(vocab_range(vocab, parts, part));
  return ranges;
}

TEST(VocabRange, HandWrittenLists) {
  // 259 = 2 * 129 + 1: part 0 takes the extra row.
  EXPECT_EQ(split(259, 2), (std::vector<VocabRange>{{0, 130}, {130, 259}}));
  // 259 = 4 * 64 + 3: parts 0..2 take one extra row (the header's worked example).
  EXPECT_EQ(split(259, 4),
            (std::vector<VocabRange>{{0, 65}, {65, 130}, {130, 195}, {195, 259}}));
  // 8 = 3 * 2 + 2.
  EXPECT_EQ(split(8, 3), (std::vector<VocabRange>{{0, 3}, {3, 6}, {6, 8}}));
  // One part holds everything; as many parts as rows hold one each.
  EXPECT_EQ(split(259, 1), (std::vector<VocabRange>{{0, 259}}));
  EXPECT_EQ(split(3, 3), (std::vector<VocabRange>{{0, 1}, {1, 2}, {2, 3}}));
}

TEST(VocabRange, EveryRowOwnedExactlyOnce) {
  for (const std::int64_t vocab : {8, 37, 259, 32000, 50257}) {
    for (int parts = 1; parts <= 9 && parts <= vocab; ++parts) {
      std::vector<int> owners(static_cast<std::size_t>(vocab), 0);
      std::int64_t expected_begin = 0;
      for (const VocabRange& r : split(vocab, parts)) {
        EXPECT_EQ(r.begin, expected_begin) << vocab << " over " << parts;  // contiguous
        EXPECT_TRUE(r.size() == vocab / parts || r.size() == vocab / parts + 1)
            << vocab << " over " << parts << ": " << r.size() << " rows";
        for (std::int64_t row = r.begin; row < r.end; ++row) ++owners[row];
        expected_begin = r.end;
      }
      EXPECT_EQ(expected_begin, vocab) << vocab << " over " << parts;
      for (std::int64_t row = 0; row < vocab; ++row)
        ASSERT_EQ(owners[row], 1) << "row " << row << " of " << vocab << " over " << parts;
    }
  }
}

TEST(VocabRange, ErrorsNameTheSizes) {
  EXPECT_NE(error_of([] { vocab_range(2, 3, 0); })
                .find("a vocabulary of 2 rows cannot give each of 3 parts a row"),
            std::string::npos);
  EXPECT_NE(error_of([] { vocab_range(259, 4, 4); }).find("part 4 is outside [0, 4)"),
            std::string::npos);
  EXPECT_NE(error_of([] { vocab_range(259, 0, 0); }).find("must be >= 1, got 0"),
            std::string::npos);
}

}  // namespace
}  // namespace ratrain
