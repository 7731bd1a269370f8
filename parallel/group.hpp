// A communicator group of one parallel axis (tp, sp, pp or dp), passed as a value
// (STYLE.md item 5).
//
// Collectives come in forward/backward pairs (STYLE.md item 6) and return at once for
// a group of one, so the model is written once for every layout. A group of several
// ranks runs host tensors (f32, f64) through MPI (parallel/mpi_group.hpp) and, once
// enable_device_tensors() has made its NCCL communicator, device tensors (f32, f64,
// bf16, i32) through NCCL (parallel/nccl_comm.hpp), which says how the device
// operations order with the compute stream.
//
// Invariants:
// - A group of one holds no communicator and never calls MPI: single-process code needs
//   no MPI_Init and pays one branch per collective.
// - Copies of a larger group share the one communicator it owns; the last copy frees it.
// - Every rank of a group calls the same collectives in the same order with tensors of
//   the same shape and dtype. The blocking calls block, so a rank that skips one stalls
//   the rest. The non-blocking (`_async`) ones count in that order when they start; the
//   ranks may wait for them at different times.
// - Tensors are contiguous row-major (runtime/tensor.hpp); "rows" are dimension 0.
#pragma once

#include <memory>

#include "runtime/error.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

namespace detail {
class MpiComm;     // an owned MPI communicator, defined in mpi_group.cpp
class MpiRequest;  // an MPI request and the tensors it works on, defined in mpi_group.cpp
class NcclComm;    // an owned NCCL communicator (nccl_comm.hpp)
class NcclRequest; // a started NCCL operation and its tensors (nccl_comm.hpp)
}  // namespace detail

// A collective started by one of Group's `_async` calls. Until wait() (or a test() that
// returns true) the operation may still read its inputs and write its outputs: the
// caller touches neither meanwhile. The request holds a reference to their storage, so
// it stays allocated as long as the operation may use it, whoever else lets go.
//
// For device tensors (NCCL), wait() and test() order the compute stream after the
// operation rather than block the host (nccl_comm.hpp).
//
// Destruction of a request still in flight:
// - in normal control flow it waits, like the future of std::async: every rank started
//   the same collective, so it completes;
// - while an exception unwinds it does NOT wait. The ranks may be out of step now (one
//   that failed before starting the collective will never join it), and this rank's
//   error would then never reach main(), which prints it and aborts the job
//   (MpiRuntime::abort_job). MPI forbids freeing a collective's request, so the request
//   and its tensors are parked, never freed, until the process ends: MPI cannot write
//   into released memory in the meantime.
class CollectiveRequest {
 public:
  CollectiveRequest();  // complete: what a group of one returns
  CollectiveRequest(CollectiveRequest&& other) noexcept;
  // Disposes of the request held before as the destructor does.
  CollectiveRequest& operator=(CollectiveRequest&& other) noexcept;
  ~CollectiveRequest();

  bool complete() const { return mpi_ == nullptr && nccl_ == nullptr; }
  // Gives MPI a chance to advance the operation (without a progress thread, Open MPI's
  // non-blocking collectives move only inside MPI calls) and says whether it completed.
  bool test();
  // Returns once the operation has completed; its outputs then hold the result.
  void wait();

 private:
  friend class Group;
  explicit CollectiveRequest(std::unique_ptr<detail::MpiRequest> started);
  explicit CollectiveRequest(std::unique_ptr<detail::NcclRequest> started);

  // At most one is set; both null exactly when complete.
  std::unique_ptr<detail::MpiRequest> mpi_;
  std::unique_ptr<detail::NcclRequest> nccl_;
};

class Group {
 public:
  static Group single() { return Group(); }
  // A group over an owned communicator of several ranks; made by group_from_mpi
  // (parallel/mpi_group.hpp) and by split.
  explicit Group(std::shared_ptr<const detail::MpiComm> comm);

  int size() const { return size_; }
  int rank() const { return rank_; }

  // Makes this group take device tensors too: an NCCL communicator over its ranks, the
  // id broadcast over MPI. Collective over the group; each rank must have bound its GPU
  // (bind_local_device). Groups split from this one take them as well. A group of one
  // needs nothing.
  void enable_device_tensors();
  bool takes_device_tensors() const { return size_ == 1 || nccl_ != nullptr; }

  // ---- new groups; collective over this group ---------------------------------------
  // The ranks passing the same color (>= 0) form one group, ordered by key. It takes
  // device tensors when this group does.
  Group split(int color, int key) const { return size_ > 1 ? split_multi(color, key) : *this; }
  // The ranks of this group that share this node's memory, in this group's order (host
  // tensors only).
  Group split_by_node() const { return size_ > 1 ? split_by_node_multi() : *this; }

  // ---- all-reduce; its backward partner is the identity -----------------------------
  // A row-parallel layer sums its partial outputs here in forward and passes the
  // gradient through unchanged; a column-parallel layer takes its input unchanged in
  // forward and sums the input gradient here in backward (Megatron's reduce_from /
  // copy_to pair).
  //
  // Sum over the group, in place.
  void all_reduce_sum(Tensor& t) const {
    if (size_ > 1) all_reduce_sum_multi(t);
  }
  double all_reduce_sum(double value) const {
    return size_ > 1 ? all_reduce_sum_multi(value) : value;
  }

  // ---- all-gather <-> reduce-scatter ------------------------------------------------
  // local (n, ...) on every rank -> (size * n, ...), rank r's block in rows
  // [r * n, (r + 1) * n). Out of place; a group of one returns `local` itself (the
  // same storage, no copy). Any n, including one not a multiple of the group size.
  Tensor all_gather(const Tensor& local) const {
    return size_ > 1 ? all_gather_multi(local) : local;
  }
  // The backward of all_gather: full (size * n, ...) on every rank -> (n, ...), the sum
  // over ranks of their rows [rank * n, (rank + 1) * n). Rows must be a multiple of the
  // group size. Out of place; a group of one returns `full` itself.
  Tensor reduce_scatter_sum(const Tensor& full) const {
    return size_ > 1 ? reduce_scatter_sum_multi(full) : full;
  }

  // ---- the same pair, non-blocking (CollectiveRequest says when the tensors are free) -
  // A data-parallel optimizer starts the reduce-scatter of each gradient bucket while
  // the backward pass still computes the others (model/grad_buckets.hpp).
  //
  // full (size * n, ...) -> shard (n, ...): writes into `shard` what reduce_scatter_sum
  // returns. `shard` must not overlap `full`, except for a group of one, where it gets
  // `full` at once (no copy when it is the same elements) and the request is complete.
  CollectiveRequest reduce_scatter_sum_async(const Tensor& full, Tensor& shard) const {
    if (size_ > 1) return reduce_scatter_sum_async_multi(full, shard);
    if (shard.raw() != full.raw()) shard.copy_from(full);
    return CollectiveRequest();
  }
  // In place: full (size * n, ...) holds this rank's block in rows [rank * n,
  // (rank + 1) * n); once complete, every rank's block in its rows on every rank. A
  // group of one has nothing to gather: complete at once.
  CollectiveRequest all_gather_in_place_async(Tensor& full) const {
    return size_ > 1 ? all_gather_in_place_async_multi(full) : CollectiveRequest();
  }

  // ---- broadcast; its backward partner is a sum-reduce to the root ------------------
  // t on every rank = t on group rank `root`, in place.
  void broadcast(Tensor& t, int root) const {
    if (size_ > 1) broadcast_multi(t, root);
  }

  // ---- point to point between pipeline stages: send <-> recv -------------------------
  // The backward of a stage's send of activations is its recv of their gradient.
  // Blocking: send may wait until `peer` posts the matching recv, so two ranks must not
  // both send to each other first. Messages between two ranks arrive in send order.
  // `peer` is another rank of this group, so a group of one has none (an error).
  void send(const Tensor& t, int peer) const;
  // Receives into `t`, which must have the sender's element count (checked for host
  // tensors; NCCL cannot check, so a device mismatch corrupts or hangs).
  void recv(Tensor& t, int peer) const;
  // Sends `out` to `peer` and receives `in` from `peer` in one call, which completes
  // however large the messages are: two ranks that each send to the other first may
  // wait for each other forever. A pipeline stage pairs the send of an activation with
  // the receive of a gradient from the same neighbour this way (model/pipeline_plan.hpp).
  // `in` must have the element count `peer` sends and must not overlap `out`.
  void send_recv(const Tensor& out, Tensor& in, int peer) const;

  // ---- a ring shift, non-blocking ---------------------------------------------------
  // Sends `out` to rank `to` and receives `in` from rank `from` (ring attention passes
  // blocks with to = rank + 1, from = rank - 1), returning at once: the transfer runs
  // while the caller computes on other tensors (it may read `out` meanwhile, not write
  // it; `in` is untouchable until the request completes). Both transfers are posted
  // before either is waited for, so no order of the ranks' calls deadlocks, whatever the
  // message sizes. `in` must have the element count `from` sends and must not overlap
  // `out` (the count is not checked here: the ring's blocks all have one shape). A group
  // of one shifts to itself: `in` gets `out`, complete at once.
  CollectiveRequest shift_async(const Tensor& out, int to, Tensor& in, int from) const {
    if (size_ > 1) return shift_async_multi(out, to, in, from);
    RT_REQUIRE(to == 0 && from == 0, "Group::shift_async: a group of one shifts to itself "
               "(rank 0), not to ", to, " from ", from);
    in.copy_from(out);
    return CollectiveRequest();
  }

  // Returns once every rank of the group has called it.
  void barrier() const {
    if (size_ > 1) barrier_multi();
  }

 private:
  Group() = default;

  // The multi-rank paths (mpi_group.cpp): host tensors on MPI, device tensors on NCCL.
  Group split_multi(int color, int key) const;
  Group split_by_node_multi() const;
  void all_reduce_sum_multi(Tensor& t) const;
  double all_reduce_sum_multi(double value) const;
  Tensor all_gather_multi(const Tensor& local) const;
  Tensor reduce_scatter_sum_multi(const Tensor& full) const;
  CollectiveRequest reduce_scatter_sum_async_multi(const Tensor& full, Tensor& shard) const;
  CollectiveRequest all_gather_in_place_async_multi(Tensor& full) const;
  CollectiveRequest shift_async_multi(const Tensor& out, int to, Tensor& in, int from) const;
  void broadcast_multi(Tensor& t, int root) const;
  void barrier_multi() const;

  // The NCCL communicator, or null when device tensors are not enabled.
  const detail::NcclComm& nccl(const char* op) const;

  std::shared_ptr<const detail::MpiComm> comm_;  // null exactly when size_ == 1
  std::shared_ptr<const detail::NcclComm> nccl_;  // set by enable_device_tensors
  int size_ = 1;
  int rank_ = 0;
};

}  // namespace ratrain
