// Group's collectives under mpiexec with 2 or more ranks, on the world and on every
// group of every layout that fits it (groups of one included: they return at once),
// blocking and non-blocking (several requests in flight at once).
//
// Rank m contributes value(m, i) = 100 * (m + 1) + i at element i: small integers, so
// any reduction order gives one exact answer and results are compared bitwise
// (STYLE.md item 4). Sizes are odd on purpose (21, 13, 7 elements; 3 rows per rank),
// never multiples of the group size unless the op requires it.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel/parallel_context.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

// The world, then the four groups of every layout of layouts_for(world size).
std::vector<GroupCase> every_group() {
  const Group world = world_group();
  std::vector<int> everyone(world.size());
  for (int r = 0; r < world.size(); ++r) everyone[r] = r;
  std::vector<GroupCase> cases = {{"world", world, everyone}};
  for (GroupCase& c : layout_groups(world, Device::cpu)) cases.push_back(std::move(c));
  return cases;
}

int world_rank() { return world_group().rank(); }

TEST(Collectives, AllReduceSumInPlace) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      Tensor t = filled({7, 3}, dtype, [&](std::int64_t i) { return value(me, i); });
      c.group.all_reduce_sum(t);
      EXPECT_EQ(t.shape(), (Shape{7, 3}));
      expect_elements(t, [&](std::int64_t i) { return sum_of_values(c.members, i); },
                      c.label + " " + std::string(dtype_name(dtype)));
    }
  }
}

TEST(Collectives, AllReduceSumOfAScalar) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    double expected = 0;
    for (const int m : c.members) expected += m + 0.5;
    EXPECT_EQ(c.group.all_reduce_sum(me + 0.5), expected) << c.label;
  }
}

TEST(Collectives, AllGatherConcatenatesRankBlocksOutOfPlace) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size();
    for (const Shape& shape : {Shape{3, 5}, Shape{7}}) {
      const Tensor local = filled(shape, DType::f32, [&](std::int64_t i) { return value(me, i); });
      const Tensor gathered = c.group.all_gather(local);
      Shape expected_shape = shape;
      expected_shape[0] *= n;
      ASSERT_EQ(gathered.shape(), expected_shape) << c.label;
      const std::int64_t block = local.numel();
      expect_elements(gathered,
                      [&](std::int64_t j) { return value(c.members[j / block], j % block); },
                      c.label + " gathered " + shape_str(shape));
      expect_elements(local, [&](std::int64_t i) { return value(me, i); },
                      c.label + " input kept " + shape_str(shape));
    }
  }
}

TEST(Collectives, ReduceScatterSumsRankBlocksOutOfPlace) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size();
    const int rank = c.group.rank();
    const Tensor full =
        filled({3 * n, 5}, DType::f32, [&](std::int64_t j) { return value(me, j); });
    const Tensor part = c.group.reduce_scatter_sum(full);
    ASSERT_EQ(part.shape(), (Shape{3, 5})) << c.label;
    expect_elements(part, [&](std::int64_t i) { return sum_of_values(c.members, rank * 15 + i); },
                    c.label + " part");
    expect_elements(full, [&](std::int64_t j) { return value(me, j); }, c.label + " input kept");
  }
}

// The pair of STYLE.md item 6: reduce-scatter after all-gather sums the group's copies
// of each rank's own block, so it gives back size times the input.
TEST(Collectives, ReduceScatterAfterAllGatherScalesByTheGroupSize) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    const Tensor x = filled({3, 5}, DType::f64, [&](std::int64_t i) { return value(me, i); });
    const Tensor y = c.group.reduce_scatter_sum(c.group.all_gather(x));
    ASSERT_EQ(y.shape(), x.shape()) << c.label;
    expect_elements(y, [&](std::int64_t i) { return c.group.size() * value(me, i); }, c.label);
  }
}

TEST(Collectives, ReduceScatterNeedsRowsAMultipleOfTheGroupSize) {
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size();
    if (n == 1) continue;  // returns at once, any rows
    const Tensor full = Tensor::zeros({3 * n + 1, 2}, DType::f32);
    const std::string message = error_of([&] { c.group.reduce_scatter_sum(full); });
    EXPECT_NE(message.find("must be a multiple of the group size " + std::to_string(n)),
              std::string::npos)
        << c.label << ": " << message;
  }
}

// Non-blocking: three reduce-scatters of different sizes and an in-place all-gather in
// flight on one group at once, a blocking all-reduce on the same group while they are,
// then waited for in another order than started: each gives its blocking twin's
// result exactly.
TEST(Collectives, NonBlockingCollectivesInFlightTogether) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size(), rank = c.group.rank();
    const std::int64_t rows[] = {3, 1, 7};  // per rank, of 2 columns
    // Input k holds value(me, j) + 1000 k at element j.
    auto input = [&](int k, std::int64_t j) { return value(me, j) + 1000.0 * k; };
    std::vector<Tensor> fulls, shards;
    std::vector<CollectiveRequest> reduce_scatters;
    for (int k = 0; k < 3; ++k) {
      fulls.push_back(filled({rows[k] * n, 2}, DType::f64, [&](std::int64_t j) { return input(k, j); }));
      shards.push_back(Tensor::empty({rows[k], 2}, DType::f64));
      reduce_scatters.push_back(c.group.reduce_scatter_sum_async(fulls[k], shards[k]));
    }
    // Block r of 5 elements starts as rank r's values, the others as -1.
    Tensor gathered = filled({5 * n}, DType::f32, [&](std::int64_t j) {
      return j / 5 == rank ? value(me, j % 5) : -1.0;
    });
    CollectiveRequest all_gather = c.group.all_gather_in_place_async(gathered);
    double ranks_plus_half = 0;
    for (const int m : c.members) ranks_plus_half += m + 0.5;
    EXPECT_EQ(c.group.all_reduce_sum(me + 0.5), ranks_plus_half) << c.label;

    all_gather.wait();
    for (int k = 2; k >= 0; --k) reduce_scatters[k].wait();
    expect_elements(gathered, [&](std::int64_t j) { return value(c.members[j / 5], j % 5); },
                    c.label + " all-gathered in place");
    for (int k = 0; k < 3; ++k) {
      EXPECT_TRUE(reduce_scatters[k].complete()) << c.label;
      const std::int64_t block = rows[k] * 2;
      expect_elements(shards[k],
                      [&](std::int64_t i) {
                        return sum_of_values(c.members, rank * block + i) + 1000.0 * k * n;
                      },
                      c.label + " reduce-scatter " + std::to_string(k));
      expect_elements(fulls[k], [&](std::int64_t j) { return input(k, j); },
                      c.label + " input kept " + std::to_string(k));
    }
  }
}

// test() lets a request complete without wait(), and a request dropped in normal
// control flow waits in its destructor: either way the result is there.
TEST(Collectives, NonBlockingCompletesThroughTestOrDestructor) {
  const int me = world_rank();
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size(), rank = c.group.rank();
    const Tensor full = filled({4 * n}, DType::f32, [&](std::int64_t j) { return value(me, j); });
    auto expected = [&](std::int64_t i) { return sum_of_values(c.members, rank * 4 + i); };
    Tensor tested = Tensor::empty({4}, DType::f32);
    CollectiveRequest request = c.group.reduce_scatter_sum_async(full, tested);
    while (!request.test()) {
    }
    expect_elements(tested, expected, c.label + " after test()");
    Tensor dropped = Tensor::empty({4}, DType::f32);
    { const CollectiveRequest unwaited = c.group.reduce_scatter_sum_async(full, dropped); }
    expect_elements(dropped, expected, c.label + " after the destructor");
  }
}

// While an exception unwinds, a request in flight is not waited for: here rank 1 joins
// the collective only after a barrier that rank 0 reaches through the unwinding. A
// destructor that waited would hold rank 0 before the barrier forever.
TEST(Collectives, NonBlockingIsNotWaitedForWhileAnExceptionUnwinds) {
  const Group world = world_group();
  const Group pair = world.split(world.rank() < 2 ? 0 : 1, world.rank());
  const Tensor full = filled({2}, DType::f64, [&](std::int64_t j) { return value(world.rank(), j); });
  Tensor shard = Tensor::empty({1}, DType::f64);
  if (world.rank() == 0) {
    try {
      const CollectiveRequest request = pair.reduce_scatter_sum_async(full, shard);
      throw std::runtime_error("a failure while the collective is in flight");
    } catch (const std::runtime_error&) {
    }
    world.barrier();
  } else if (world.rank() == 1) {
    world.barrier();
    CollectiveRequest request = pair.reduce_scatter_sum_async(full, shard);
    request.wait();
    EXPECT_EQ(shard.item(0), value(0, 1) + value(1, 1));
  } else {
    world.barrier();
  }
  world.barrier();  // rank 0 lets MPI advance its abandoned half meanwhile
}

TEST(Collectives, NonBlockingChecksShapesBeforeStarting) {
  for (const GroupCase& c : every_group()) {
    const int n = c.group.size();
    if (n == 1) continue;  // no checks: completes at once
    Tensor wrong = Tensor::empty({3}, DType::f32);
    std::string message = error_of(
        [&] { c.group.reduce_scatter_sum_async(Tensor::zeros({2 * n}, DType::f32), wrong); });
    EXPECT_NE(message.find("Group::reduce_scatter_sum_async: shard has shape (3), expected (2)"),
              std::string::npos)
        << c.label << ": " << message;
    Tensor odd = Tensor::zeros({2 * n + 1}, DType::f32);
    message = error_of([&] { c.group.all_gather_in_place_async(odd); });
    EXPECT_NE(message.find("Group::all_gather_in_place_async: the rows of (" +
                           std::to_string(2 * n + 1) + ") must be a multiple of the group size"),
              std::string::npos)
        << c.label << ": " << message;
  }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  for (const GroupCase& c : every_group()) {
    for (int root = 0; root < c.group.size(); ++root) {
      const int root_world = c.members[root];
      Tensor t = filled({13}, DType::f32, [&](std::int64_t i) {
        return c.group.rank() == root ? value(root_world, i) : -1.0;
      });
      c.group.broadcast(t, root);
      expect_elements(t, [&](std::int64_t i) { return value(root_world, i); },
                      c.label + " root " + std::to_string(root));
    }
  }
}

// The pp group of every layout of layouts_for(world size) with more than one stage.
std::vector<GroupCase> every_pipeline() {
  const Group world = world_group();
  std::vector<GroupCase> cases;
  for (const ParallelSizes& sizes : layouts_for(world.size())) {
    if (sizes.pp == 1) continue;
    const ParallelContext ctx = ParallelContext::create(world, sizes);
    cases.push_back({to_string(sizes) + ", pp group", ctx.pp,
                     place_rank(sizes, world.size(), world.rank()).group(Axis::pp)});
  }
  return cases;
}

// Activations travel forward through the pipeline stages and gradients back, each
// stage adding (world rank + 1): the last stage (forward) and the first (backward)
// see every stage's addition exactly once.
TEST(Collectives, SendRecvBetweenPipelineNeighbours) {
  const int me = world_rank();
  const std::vector<GroupCase> pipelines = every_pipeline();
  EXPECT_FALSE(pipelines.empty());
  for (const GroupCase& c : pipelines) {
    const Group& pp = c.group;
    const int stage = pp.rank();
    const int last = pp.size() - 1;
    const double added = me + 1;
    double all_added = 0;
    for (const int m : c.members) all_added += m + 1;

    Tensor act = Tensor::empty({2, 3}, DType::f32);  // (rows, channels)
    if (stage == 0)
      act = filled({2, 3}, DType::f32, [](std::int64_t i) { return double(i); });
    else
      pp.recv(act, stage - 1);
    act = filled({2, 3}, DType::f32, [&](std::int64_t i) { return act.item(i) + added; });
    if (stage < last)
      pp.send(act, stage + 1);
    else
      expect_elements(act, [&](std::int64_t i) { return double(i) + all_added; },
                      c.label + " forward");

    Tensor grad = Tensor::empty({2, 3}, DType::f32);
    if (stage == last)
      grad = filled({2, 3}, DType::f32, [](std::int64_t i) { return 2.0 * double(i); });
    else
      pp.recv(grad, stage + 1);
    grad = filled({2, 3}, DType::f32, [&](std::int64_t i) { return grad.item(i) + added; });
    if (stage > 0)
      pp.send(grad, stage - 1);
    else
      expect_elements(grad, [&](std::int64_t i) { return 2.0 * double(i) + all_added; },
                      c.label + " backward");
  }
}

// Neighbouring stages pair up (0 with 1, 2 with 3) and exchange in one send_recv, as
// the pipeline's steady state pairs an activation with a gradient: each gets the
// other's values and keeps its own.
TEST(Collectives, SendRecvExchangesWithAPipelineNeighbour) {
  const int me = world_rank();
  const std::vector<GroupCase> pipelines = every_pipeline();
  EXPECT_FALSE(pipelines.empty());
  for (const GroupCase& c : pipelines) {
    const int partner = c.group.rank() ^ 1;
    ASSERT_LT(partner, c.group.size()) << "the layouts of the tests have even pipelines";
    const Tensor out = filled({3, 7}, DType::f64, [&](std::int64_t i) { return value(me, i); });
    Tensor in = Tensor::empty({3, 7}, DType::f64);
    c.group.send_recv(out, in, partner);
    expect_elements(in, [&](std::int64_t i) { return value(c.members[partner], i); },
                    c.label + " received");
    expect_elements(out, [&](std::int64_t i) { return value(me, i); }, c.label + " sent, kept");
  }
}

// Both ranks of a pair send at once, far beyond MPI's eager limit (past it MPI_Send
// waits for the matching receive): send then recv on both sides would wait forever,
// send_recv completes.
TEST(Collectives, SendRecvOfLargeMessagesBothWaysAtOnce) {
  const Group world = world_group();
  const int partner = world.rank() ^ 1;
  if (partner < world.size()) {
    // 16 MiB of f32 each way; value(m, i) stays below 2^24, exact in f32.
    constexpr std::int64_t n = std::int64_t{1} << 22;
    const Tensor out =
        filled({n}, DType::f32, [&](std::int64_t i) { return value(world.rank(), i); });
    Tensor in = Tensor::empty({n}, DType::f32);
    world.send_recv(out, in, partner);
    expect_elements(in, [&](std::int64_t i) { return value(partner, i); }, "received");
  }
  world.barrier();
}

// Every group passes blocks around its ring, two shifts in flight at once (as ring
// attention's k, v blocks and the accumulators one step behind), 16 MiB each so that
// both are past MPI's eager limit: each rank gets its predecessor's blocks, whatever the
// order the waits come in; a group of one gets its own.
TEST(Collectives, ShiftAsyncPassesBlocksAroundTheRing) {
  const int me = world_rank();
  constexpr std::int64_t n = std::int64_t{1} << 22;
  for (const GroupCase& c : every_group()) {
    const int size = c.group.size(), rank = c.group.rank();
    const int next = (rank + 1) % size, previous = (rank + size - 1) % size;
    const Tensor first = filled({n}, DType::f32, [&](std::int64_t i) { return value(me, i); });
    const Tensor second = filled({3, 7}, DType::f64, [&](std::int64_t i) { return -value(me, i); });
    Tensor first_in = Tensor::empty({n}, DType::f32), second_in = Tensor::empty({3, 7}, DType::f64);
    CollectiveRequest a = c.group.shift_async(first, next, first_in, previous);
    CollectiveRequest b = c.group.shift_async(second, next, second_in, previous);
    b.wait();  // the later one first
    a.wait();
    const int from = c.members[previous];
    expect_elements(first_in, [&](std::int64_t i) { return value(from, i); }, c.label + " first");
    expect_elements(second_in, [&](std::int64_t i) { return -value(from, i); },
                    c.label + " second");
  }
}

TEST(Collectives, ShiftAsyncChecksItsPeers) {
  const Group world = world_group();
  Tensor t = Tensor::zeros({2}, DType::f32), in = Tensor::zeros({2}, DType::f32);
  const std::string message = error_of([&] { world.shift_async(t, world.rank(), in, 0); });
  EXPECT_NE(message.find("Group::shift_async: peer"), std::string::npos) << message;
  const std::string alone = error_of([&] { Group::single().shift_async(t, 1, in, 0); });
  EXPECT_NE(alone.find("a group of one shifts to itself"), std::string::npos) << alone;
}

// A longer message than the receiving tensor is an MPI error (reported through
// RT_CHECK_MPI with the call, MPI's string and the world rank); a shorter one is ours.
TEST(Collectives, RecvChecksTheMessageSize) {
  const Group world = world_group();
  if (world.rank() == 0) {
    world.send(Tensor::zeros({6}, DType::f32), 1);
    world.send(Tensor::zeros({4}, DType::f32), 1);
  } else if (world.rank() == 1) {
    Tensor t = Tensor::zeros({5}, DType::f32);
    std::string message = error_of([&] { world.recv(t, 0); });
    EXPECT_NE(message.find("MPI call failed: MPI_ERR_TRUNCATE"), std::string::npos) << message;
    EXPECT_NE(message.find("(MPI world rank 1 of "), std::string::npos) << message;
    EXPECT_NE(message.find("`MPI_Recv(buffer.data"), std::string::npos) << message;
    message = error_of([&] { world.recv(t, 0); });
    EXPECT_NE(message.find("rank 0 sent 4 elements but the receiving tensor (5) holds 5"),
              std::string::npos)
        << message;
  }
  world.barrier();
}

// Argument errors are raised before any MPI call, on every rank alike, so the ranks
// stay in step.
TEST(Collectives, RefuseOtherDtypesAndPeers) {
  const Group world = world_group();
  Tensor half = Tensor::zeros({4}, DType::bf16);
  std::string message = error_of([&] { world.all_reduce_sum(half); });
  EXPECT_NE(message.find("Group::all_reduce_sum: host tensors must be f32 or f64 (got bf16)"),
            std::string::npos)
      << message;
  message = error_of([&] { world.all_gather(Tensor::zeros({4}, DType::i32)); });
  EXPECT_NE(message.find("(got i32)"), std::string::npos) << message;
  Tensor t = Tensor::zeros({4}, DType::f32);
  message = error_of([&] { world.send(t, world.rank()); });
  EXPECT_NE(message.find("must be another rank of this group"), std::string::npos) << message;
  Tensor in = Tensor::zeros({4}, DType::f32);
  message = error_of([&] { world.send_recv(t, in, world.size()); });
  EXPECT_NE(message.find("Group::send_recv: peer " + std::to_string(world.size()) +
                         " must be another rank of this group"),
            std::string::npos)
      << message;
  message = error_of([&] { world.broadcast(t, world.size()); });
  EXPECT_NE(message.find("root " + std::to_string(world.size()) + " is not a rank"),
            std::string::npos)
      << message;
  world.barrier();
}

}  // namespace
}  // namespace ratrain
