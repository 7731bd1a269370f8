// Group's collectives on DEVICE tensors (NCCL, parallel/nccl_comm.hpp) under mpiexec, one
// GPU per rank: every group of every layout of layouts_for(world size), each dtype NCCL
// carries for us, blocking and non-blocking, point to point. Values are the small
// integers of mpi_test_util.hpp, exact in every dtype here (bf16 holds integers up to
// 256 exactly, so its cases use value - 100 * (m + 1), i.e. i), and compared bitwise
// after a copy to the host. Skipped on every rank with fewer GPUs than ranks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parallel/parallel_context.hpp"
#include "runtime/device_memory.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

class NcclCollectives : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
    const Group world = world_group();
    cases_ = layout_groups(world, Device::cuda);
    me_ = world.rank();
  }

  std::vector<GroupCase> cases_;
  int me_ = 0;
};

Tensor on_gpu(const Tensor& host) { return host.to(Device::cuda); }
Tensor on_host(const Tensor& device) { return device.to(Device::cpu); }

TEST_F(NcclCollectives, AllReduceSumEveryDtype) {
  for (const GroupCase& c : cases_) {
    for (const DType dtype : {DType::f32, DType::f64, DType::i32}) {
      Tensor t = on_gpu(filled({7, 3}, dtype, [&](std::int64_t i) { return value(me_, i); }));
      c.group.all_reduce_sum(t);
      expect_elements(on_host(t), [&](std::int64_t i) { return sum_of_values(c.members, i); },
                      c.label + " " + std::string(dtype_name(dtype)));
    }
    // bf16: element i of every rank is i (< 64), so the sum is size * i, exact.
    Tensor t = on_gpu(filled({64}, DType::bf16, [](std::int64_t i) { return double(i); }));
    c.group.all_reduce_sum(t);
    expect_elements(on_host(t), [&](std::int64_t i) { return double(c.group.size() * i); },
                    c.label + " bf16");
  }
}

TEST_F(NcclCollectives, AllGatherAndReduceScatterArePartners) {
  for (const GroupCase& c : cases_) {
    const int n = c.group.size(), rank = c.group.rank();
    const Tensor local = on_gpu(filled({3, 5}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    const Tensor gathered = c.group.all_gather(local);
    ASSERT_EQ(gathered.shape(), (Shape{3 * n, 5})) << c.label;
    EXPECT_EQ(gathered.device(), Device::cuda);
    expect_elements(on_host(gathered), [&](std::int64_t j) { return value(c.members[j / 15], j % 15); },
                    c.label + " gathered");
    const Tensor full = on_gpu(filled({3 * n, 5}, DType::f64, [&](std::int64_t j) { return value(me_, j); }));
    const Tensor part = c.group.reduce_scatter_sum(full);
    ASSERT_EQ(part.shape(), (Shape{3, 5})) << c.label;
    expect_elements(on_host(part),
                    [&](std::int64_t i) { return sum_of_values(c.members, rank * 15 + i); },
                    c.label + " reduce-scattered");
  }
}

// Several reduce-scatters and an in-place all-gather in flight while the compute stream
// and a blocking all-reduce go on, waited for in another order (the DP buckets' use).
TEST_F(NcclCollectives, NonBlockingInFlightTogether) {
  for (const GroupCase& c : cases_) {
    const int n = c.group.size(), rank = c.group.rank();
    const std::int64_t rows[] = {3, 1, 700};
    std::vector<Tensor> fulls, shards;
    std::vector<CollectiveRequest> requests;
    for (int k = 0; k < 3; ++k) {
      fulls.push_back(on_gpu(filled({rows[k] * n, 2}, DType::f32,
                                    [&](std::int64_t j) { return value(me_, j) + 1000.0 * k; })));
      shards.push_back(Tensor::empty({rows[k], 2}, DType::f32, Device::cuda));
      requests.push_back(c.group.reduce_scatter_sum_async(fulls[k], shards[k]));
    }
    Tensor gathered = on_gpu(filled({5 * n}, DType::f32, [&](std::int64_t j) {
      return j / 5 == rank ? value(me_, j % 5) : -1.0;
    }));
    CollectiveRequest all_gather = c.group.all_gather_in_place_async(gathered);
    Tensor blocking = on_gpu(filled({4}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    c.group.all_reduce_sum(blocking);
    while (!all_gather.test()) {
    }
    for (int k = 2; k >= 0; --k) requests[k].wait();
    expect_elements(on_host(blocking), [&](std::int64_t i) { return sum_of_values(c.members, i); },
                    c.label + " blocking between");
    expect_elements(on_host(gathered), [&](std::int64_t j) { return value(c.members[j / 5], j % 5); },
                    c.label + " all-gathered in place");
    for (int k = 0; k < 3; ++k) {
      EXPECT_TRUE(requests[k].complete());
      const std::int64_t block = rows[k] * 2;
      expect_elements(on_host(shards[k]),
                      [&](std::int64_t i) {
                        return sum_of_values(c.members, rank * block + i) + 1000.0 * k * n;
                      },
                      c.label + " reduce-scatter " + std::to_string(k));
    }
  }
}

TEST_F(NcclCollectives, BroadcastAndPointToPoint) {
  for (const GroupCase& c : cases_) {
    const int n = c.group.size(), rank = c.group.rank();
    for (int root = 0; root < n; ++root) {
      Tensor t = on_gpu(filled({13}, DType::bf16, [&](std::int64_t i) {
        return rank == root ? double(i + root) : -1.0;
      }));
      c.group.broadcast(t, root);
      expect_elements(on_host(t), [&](std::int64_t i) { return double(i + root); },
                      c.label + " broadcast from " + std::to_string(root));
    }
    if (n == 1) continue;
    // A ring: send to the next rank, receive from the previous, as pipeline stages do.
    const int next = (rank + 1) % n, previous = (rank + n - 1) % n;
    const Tensor out = on_gpu(filled({3, 7}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    Tensor in = Tensor::empty({3, 7}, DType::f32, Device::cuda);
    if (rank % 2 == 0) {
      c.group.send(out, next);
      c.group.recv(in, previous);
    } else {
      c.group.recv(in, previous);
      c.group.send(out, next);
    }
    expect_elements(on_host(in), [&](std::int64_t i) { return value(c.members[previous], i); },
                    c.label + " received in a ring");
    // Both ways at once with one partner, 16 MiB each way.
    const int partner = rank ^ 1;
    if (partner >= n) continue;
    constexpr std::int64_t big = std::int64_t{1} << 22;
    const Tensor sent = on_gpu(filled({big}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    Tensor got = Tensor::empty({big}, DType::f32, Device::cuda);
    c.group.send_recv(sent, got, partner);
    expect_elements(on_host(got), [&](std::int64_t i) { return value(c.members[partner], i); },
                    c.label + " send_recv");
  }
}

// Ring shifts of device tensors, two in flight (ring attention's blocks and accumulators):
// the compute stream sees each result once its request is waited for.
TEST_F(NcclCollectives, ShiftAsyncPassesDeviceBlocksAroundTheRing) {
  constexpr std::int64_t big = std::int64_t{1} << 22;
  for (const GroupCase& c : cases_) {
    const int n = c.group.size(), rank = c.group.rank();
    const int next = (rank + 1) % n, previous = (rank + n - 1) % n;
    const Tensor first =
        on_gpu(filled({big}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    const Tensor second =
        on_gpu(filled({3, 7}, DType::bf16, [&](std::int64_t i) { return double(me_ + i); }));
    Tensor first_in = Tensor::empty({big}, DType::f32, Device::cuda);
    Tensor second_in = Tensor::empty({3, 7}, DType::bf16, Device::cuda);
    CollectiveRequest a = c.group.shift_async(first, next, first_in, previous);
    CollectiveRequest b = c.group.shift_async(second, next, second_in, previous);
    b.wait();
    a.wait();
    const int from = c.members[previous];
    expect_elements(on_host(first_in), [&](std::int64_t i) { return value(from, i); },
                    c.label + " shift, first");
    expect_elements(on_host(second_in), [&](std::int64_t i) { return double(from + i); },
                    c.label + " shift, second");
  }
}

// A group split from one that takes device tensors takes them too; host tensors still
// go through MPI on the same groups; a group made without NCCL says what is missing.
TEST_F(NcclCollectives, SplitGroupsHostTensorsAndGroupsWithoutNccl) {
  const Group world = world_group();  // no NCCL
  Tensor t = on_gpu(filled({3}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
  const std::string message = error_of([&] { world.all_reduce_sum(t); });
  EXPECT_NE(message.find("made without NCCL"), std::string::npos) << message;
  for (const GroupCase& c : cases_) {
    const Group half = c.group.split(0, c.group.rank());  // same members, a new group
    EXPECT_TRUE(half.takes_device_tensors()) << c.label;
    Tensor d = on_gpu(filled({5}, DType::f32, [&](std::int64_t i) { return value(me_, i); }));
    half.all_reduce_sum(d);
    expect_elements(on_host(d), [&](std::int64_t i) { return sum_of_values(c.members, i); },
                    c.label + " split group");
    Tensor h = filled({5}, DType::f64, [&](std::int64_t i) { return value(me_, i); });
    c.group.all_reduce_sum(h);
    expect_elements(h, [&](std::int64_t i) { return sum_of_values(c.members, i); },
                    c.label + " host tensor on the same group");
  }
}

}  // namespace
}  // namespace ratrain
