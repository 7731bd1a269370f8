// Groups of one and the single-process context: every collective returns at once,
// leaving data and storage untouched, whatever the tensor's dtype. This executable
// never starts MPI, so any MPI call on these paths would abort it (Open MPI refuses
// calls before MPI_Init): passing also shows the paths make none.
#include <gtest/gtest.h>

#include <utility>

#include "parallel/parallel_context.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

Tensor counting(Shape shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), DType::f64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = static_cast<double>(i);
  return t.to(dtype);
}

void expect_counting(const Tensor& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.item(i), static_cast<double>(i));
}

TEST(GroupOfOne, CollectivesReturnAtOnce) {
  const Group group = Group::single();
  EXPECT_EQ(group.size(), 1);
  EXPECT_EQ(group.rank(), 0);
  for (const DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    Tensor t = counting({3, 5}, dtype);
    group.all_reduce_sum(t);
    expect_counting(t);
    group.broadcast(t, 0);
    expect_counting(t);
    // Out of place, yet the input itself comes back: no copy for a group of one.
    EXPECT_EQ(group.all_gather(t).raw(), t.raw());
    EXPECT_EQ(group.all_gather(t).shape(), t.shape());
    EXPECT_EQ(group.reduce_scatter_sum(t).raw(), t.raw());
    expect_counting(t);
  }
  EXPECT_EQ(group.all_reduce_sum(2.5), 2.5);
  group.barrier();
  EXPECT_EQ(group.split(3, 1).size(), 1);
  EXPECT_EQ(group.split_by_node().size(), 1);
}

TEST(GroupOfOne, HasNoPeerToSendTo) {
  const Group group = Group::single();
  Tensor t = Tensor::zeros({4}, DType::f32);
  std::string message = error_of([&] { group.send(t, 0); });
  EXPECT_NE(message.find("Group::send: peer 0 must be another rank of this group of 1"),
            std::string::npos)
      << message;
  message = error_of([&] { group.recv(t, 1); });
  EXPECT_NE(message.find("Group::recv: peer 1 must be another rank"), std::string::npos) << message;
}

TEST(ParallelContext, SingleProcessIsOneRankOnEveryAxis) {
  const ParallelContext ctx = ParallelContext::single_process();
  EXPECT_EQ(ctx.world_rank, 0);
  EXPECT_EQ(ctx.world_size, 1);
  EXPECT_EQ(ctx.local_rank, 0);
  EXPECT_EQ(ctx.sizes.world(), 1);
  for (const Axis axis : kAxes) {
    EXPECT_EQ(ctx.group(axis).size(), 1) << axis_name(axis);
    EXPECT_EQ(ctx.coords.of(axis), 0) << axis_name(axis);
  }
}

// create() on a world of one is the single-process context, still without MPI.
TEST(ParallelContext, CreateOnAWorldOfOne) {
  const ParallelContext ctx = ParallelContext::create(Group::single(), {});
  EXPECT_EQ(ctx.world_size, 1);
  for (const Axis axis : kAxes) EXPECT_EQ(ctx.group(axis).size(), 1) << axis_name(axis);
  const std::string message =
      error_of([] { ParallelContext::create(Group::single(), {.tp = 2}); });
  EXPECT_NE(message.find("needs tp*sp*pp*dp = 2 ranks but the world has 1"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace ratrain
