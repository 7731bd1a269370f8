// The gradient buckets' index arithmetic (model/grad_buckets.hpp): the header's worked
// example, then for many data-parallel sizes and bucket sizes that the buckets tile the
// padded buffer in blocks of dp, close only where a parameter ends (rounded up to dp),
// and that the ranks' shards cover every element exactly once at consecutive shard
// offsets. One process: a group of one leaves the gradients in place.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/grad_buckets.hpp"

namespace ratrain {
namespace {

std::int64_t round_up(std::int64_t n, std::int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Parameters of the given sizes (at most 26), named a, b, ...
ParamTable table_of(const std::vector<std::int64_t>& sizes) {
  ParamTable table;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    table.add(std::string(1, static_cast<char>('a' + i)), {sizes[i]}, InitKind::normal);
  return table;
}

TEST(GradBuckets, WorkedExampleOfTheHeader) {
  const ParamTable table = table_of({7, 5, 7});  // A, B, C: 19 elements, padded to 20
  const std::vector<GradBucket> buckets = cut_grad_buckets(table, 20, 2, 6);
  EXPECT_EQ(buckets, (std::vector<GradBucket>{{0, 8}, {8, 20}}));
  EXPECT_EQ(shard_ranges(buckets, 2, 0),
            (std::vector<ShardRange>{{.flat_begin = 0, .shard_offset = 0, .numel = 4},
                                     {.flat_begin = 8, .shard_offset = 4, .numel = 6}}));
  EXPECT_EQ(shard_ranges(buckets, 2, 1),
            (std::vector<ShardRange>{{.flat_begin = 4, .shard_offset = 0, .numel = 4},
                                     {.flat_begin = 14, .shard_offset = 4, .numel = 6}}));
}

TEST(GradBuckets, OneRankHoldsTheWholeBufferAsOneShardRange) {
  const ParamTable table = table_of({7, 5, 7});
  const std::vector<GradBucket> buckets = cut_grad_buckets(table, 19, 1, 1);
  // Bucket size 1: every parameter closes a bucket.
  EXPECT_EQ(buckets, (std::vector<GradBucket>{{0, 7}, {7, 12}, {12, 19}}));
  EXPECT_EQ(shard_ranges(buckets, 1, 0),
            (std::vector<ShardRange>{{.flat_begin = 0, .shard_offset = 0, .numel = 19}}));
}

TEST(GradBuckets, TileTheBufferAndShardEveryElementOnce) {
  const ParamTable table = table_of({3, 40, 1, 1, 17, 2, 64, 5, 9, 1, 30});
  std::vector<std::int64_t> entry_ends;
  for (const ParamEntry& e : table.entries()) entry_ends.push_back(e.offset + e.numel);
  for (const int dp : {1, 2, 3, 4, 8}) {
    const std::int64_t padded = round_up(table.total_numel(), dp);
    for (const std::int64_t bucket_numel : {1, 6, 25, 50, 1000}) {
      SCOPED_TRACE("dp " + std::to_string(dp) + ", bucket " + std::to_string(bucket_numel));
      const std::vector<GradBucket> buckets = cut_grad_buckets(table, padded, dp, bucket_numel);
      std::int64_t expected_begin = 0;
      for (const GradBucket& b : buckets) {
        EXPECT_EQ(b.begin, expected_begin);
        EXPECT_GT(b.numel(), 0);
        EXPECT_EQ(b.numel() % dp, 0);
        bool at_a_parameter_end = false;
        for (const std::int64_t end : entry_ends) at_a_parameter_end |= b.end == round_up(end, dp);
        EXPECT_TRUE(at_a_parameter_end) << "bucket ends at " << b.end;
        expected_begin = b.end;
      }
      EXPECT_EQ(expected_begin, padded);
      // owner[i]: how many (rank, shard element) pairs hold flat element i.
      std::vector<int> owners(padded, 0);
      for (int rank = 0; rank < dp; ++rank) {
        std::int64_t shard_offset = 0;
        for (const ShardRange& r : shard_ranges(buckets, dp, rank)) {
          EXPECT_EQ(r.shard_offset, shard_offset) << "rank " << rank;
          shard_offset += r.numel;
          for (std::int64_t i = r.flat_begin; i < r.flat_begin + r.numel; ++i) ++owners[i];
        }
        EXPECT_EQ(shard_offset, padded / dp) << "rank " << rank;
      }
      for (std::int64_t i = 0; i < padded; ++i) ASSERT_EQ(owners[i], 1) << "element " << i;
    }
  }
}

TEST(GradBuckets, GroupOfOneLeavesTheGradientsInPlace) {
  const ParamTable table = table_of({7, 5, 7});
  Tensor grads = Tensor::zeros({19}, DType::f64);
  for (std::int64_t i = 0; i < 19; ++i) grads.data<double>()[i] = static_cast<double>(i);
  // 8 bytes per bucket: one f64 element, so every parameter is a bucket of its own.
  GradBuckets buckets(table, grads, Group::single(), 8, {{0, 7}});
  EXPECT_EQ(buckets.buckets().size(), 3u);
  buckets.gradients_final(12, 19);
  buckets.gradients_final(7, 12);
  const Tensor& shard = buckets.reduce_scatter();
  EXPECT_EQ(shard.raw(), grads.raw());
  EXPECT_EQ(shard.numel(), 19);
  for (std::int64_t i = 0; i < 19; ++i) EXPECT_EQ(shard.item(i), static_cast<double>(i));
}

}  // namespace
}  // namespace ratrain
