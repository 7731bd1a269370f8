// Group's multi-rank paths (see group.hpp for the semantics): host tensors on MPI, here;
// device tensors on NCCL (nccl_comm.cpp), after the same argument checks.
//
// Every MPI call goes through RT_CHECK_MPI. Arguments are checked before the first MPI
// or NCCL call, identically on every rank, so a bad call fails on all ranks alike
// instead of leaving some of them waiting in a collective.
#include "parallel/mpi_group.hpp"

#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include "parallel/communication_clock.hpp"
#include "parallel/mpi_check.hpp"
#include "parallel/nccl_comm.hpp"
#include "runtime/log.hpp"

namespace ratrain {

namespace detail {

// Owns one communicator and frees it once, when the last Group sharing it goes.
class MpiComm {
 public:
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  // MPI_Comm_free is collective in the standard but only marks the communicator for
  // deallocation, so ranks dropping their copies at different times do not block.
  // A destructor must not throw: a failure to free is logged instead.
  ~MpiComm() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // MPI_Finalize released every communicator already
    if (const int code = MPI_Comm_free(&comm_); code != MPI_SUCCESS)
      log_warn("MPI_Comm_free failed: ", mpi_describe(code));
  }

  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_;
};

// A non-blocking operation's MPI requests (one for a collective; a send and a receive
// for a ring shift) and the tensors it works on: holding them keeps their storage
// allocated for as long as MPI may read or write it.
class MpiRequest {
 public:
  MpiRequest(std::vector<Tensor> buffers, int requests)
      : requests_(static_cast<std::size_t>(requests), MPI_REQUEST_NULL),
        buffers_(std::move(buffers)),
        exceptions_at_start_(std::uncaught_exceptions()) {}
  MpiRequest(const MpiRequest&) = delete;
  MpiRequest& operator=(const MpiRequest&) = delete;

  // Still in flight: waits, or parks the requests while an exception unwinds (the
  // policy and its reasons: CollectiveRequest in group.hpp). A destructor must not
  // throw: a failed wait is logged.
  ~MpiRequest() {
    if (complete()) return;  // MPI_Waitall / MPI_Testall reset every request
    if (std::uncaught_exceptions() > exceptions_at_start_) {
      log_warn("a non-blocking collective was in flight while an exception unwound: not "
               "waiting for it (the ranks may be out of step); its buffers stay allocated "
               "until the job ends");
      parked().push_back({std::move(requests_), std::move(buffers_)});
      return;
    }
    try {
      wait();
    } catch (const Error& e) {
      log_warn(e.what());
    }
  }

  MPI_Request* handle(int i = 0) { return &requests_.at(static_cast<std::size_t>(i)); }
  bool test() {
    int done = 0;
    RT_CHECK_MPI(MPI_Testall(count(), requests_.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
  }
  void wait() { RT_CHECK_MPI(MPI_Waitall(count(), requests_.data(), MPI_STATUSES_IGNORE)); }

 private:
  struct Parked {
    std::vector<MPI_Request> requests;
    std::vector<Tensor> buffers;
  };
  // Never freed: MPI may still use the buffers until the process ends.
  static std::vector<Parked>& parked() {
    static auto* requests = new std::vector<Parked>;
    return *requests;
  }
  int count() const { return static_cast<int>(requests_.size()); }
  bool complete() const {
    for (MPI_Request r : requests_)
      if (r != MPI_REQUEST_NULL) return false;
    return true;
  }

  std::vector<MPI_Request> requests_;
  std::vector<Tensor> buffers_;
  int exceptions_at_start_;  // std::uncaught_exceptions() when the operation started
};

}  // namespace detail

CollectiveRequest::CollectiveRequest() = default;
CollectiveRequest::CollectiveRequest(std::unique_ptr<detail::MpiRequest> started)
    : mpi_(std::move(started)) {}
CollectiveRequest::CollectiveRequest(std::unique_ptr<detail::NcclRequest> started)
    : nccl_(std::move(started)) {}
CollectiveRequest::CollectiveRequest(CollectiveRequest&& other) noexcept = default;
CollectiveRequest& CollectiveRequest::operator=(CollectiveRequest&& other) noexcept = default;
CollectiveRequest::~CollectiveRequest() = default;

bool CollectiveRequest::test() {
  if (nccl_ == nullptr && mpi_ == nullptr) return true;  // complete (or a group of one)
  const CommunicationScope timed;
  if (nccl_ != nullptr) {
    if (nccl_->test()) nccl_.reset();
    return nccl_ == nullptr;
  }
  if (mpi_->test()) mpi_.reset();
  return mpi_ == nullptr;
}

void CollectiveRequest::wait() {
  if (nccl_ == nullptr && mpi_ == nullptr) return;  // complete (or a group of one)
  const CommunicationScope timed;
  if (nccl_ != nullptr) {
    nccl_->wait();
    nccl_.reset();
    return;
  }
  mpi_->wait();
  mpi_.reset();
}

namespace {

// One tag for all point-to-point traffic: MPI delivers the messages between two ranks
// of one communicator in the order they were sent, which is the order a pipeline
// schedule relies on.
constexpr int kPointToPointTag = 0;

// A tensor as MPI sees it: address, element count, element type.
struct MpiBuffer {
  void* data;
  int count;
  MPI_Datatype type;
};

MpiBuffer host_buffer(const Tensor& t, const char* op) {
  RT_REQUIRE(t.defined(), "Group::", op, ": the tensor is undefined");
  RT_ASSERT(t.device() == Device::cpu);  // device tensors go to NCCL before this
  RT_REQUIRE(t.dtype() == DType::f32 || t.dtype() == DType::f64, "Group::", op,
             ": host tensors must be f32 or f64 (got ", dtype_name(t.dtype()), ")");
  RT_REQUIRE(t.numel() <= std::numeric_limits<int>::max(), "Group::", op, ": ", t.numel(),
             " elements exceed MPI's int count; split the tensor");
  return {.data = t.raw(),
          .count = static_cast<int>(t.numel()),
          .type = t.dtype() == DType::f32 ? MPI_FLOAT : MPI_DOUBLE};
}

// Whether `t` goes through NCCL: a device tensor; its dtype must be one NCCL carries.
bool on_device(const Tensor& t, const char* op) {
  RT_REQUIRE(t.defined(), "Group::", op, ": the tensor is undefined");
  if (t.device() == Device::cpu) return false;
  RT_REQUIRE(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::bf16 ||
                 t.dtype() == DType::i32,
             "Group::", op, ": device tensors must be f32, f64, bf16 or i32 (got ",
             dtype_name(t.dtype()), ")");
  return true;
}

// Both tensors of a two-tensor call live on one device.
void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  RT_REQUIRE(a.device() == b.device(), "Group::", op, ": one tensor is on the ",
             device_name(a.device()), ", the other on the ", device_name(b.device()));
}

// Requires `full` to be (size * n, ...) and returns the shape of one rank's block, (n, ...).
Shape require_blocks(const Tensor& full, int size, const char* op) {
  RT_REQUIRE(full.rank() >= 1 && full.dim(0) % size == 0, "Group::", op, ": the rows of ",
             shape_str(full.shape()), " must be a multiple of the group size ", size);
  Shape shape = full.shape();
  shape[0] /= size;
  return shape;
}

// Point-to-point traffic goes to another rank of the group: a group of one has none.
void require_peer(int peer, int rank, int size, const char* op) {
  RT_REQUIRE(peer >= 0 && peer < size && peer != rank, "Group::", op, ": peer ", peer,
             " must be another rank of this group of ", size, " (this is rank ", rank, ")");
}

// The message that filled `buffer` (the storage of `t`) from `peer` had its element count.
// A longer message fails in the receiving call (MPI_ERR_TRUNCATE); a shorter one only
// shows here.
void require_whole_message(const MPI_Status& status, const MpiBuffer& buffer, const Tensor& t,
                           int peer, const char* op) {
  int received = 0;
  RT_CHECK_MPI(MPI_Get_count(&status, buffer.type, &received));
  RT_REQUIRE(received == buffer.count, "Group::", op, ": rank ", peer, " sent ", received,
             " elements but the receiving tensor ", shape_str(t.shape()), " holds ", buffer.count);
}

// Takes ownership of `comm` (fresh from MPI_Comm_dup / _split / _split_type).
Group adopt(MPI_Comm comm) {
  // Owned before anything can throw, so that `comm` is freed on every path.
  auto owned = std::make_shared<const detail::MpiComm>(comm);
  RT_CHECK_MPI(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  int size = 0;
  RT_CHECK_MPI(MPI_Comm_size(comm, &size));
  // A group of one keeps no communicator (group.hpp invariant); `owned` frees it here.
  if (size == 1) return Group::single();
  return Group(std::move(owned));
}

}  // namespace

Group group_from_mpi(MPI_Comm comm) {
  int size = 0;
  RT_CHECK_MPI(MPI_Comm_size(comm, &size));
  if (size == 1) return Group::single();
  MPI_Comm dup = MPI_COMM_NULL;
  RT_CHECK_MPI(MPI_Comm_dup(comm, &dup));
  return adopt(dup);
}

Group::Group(std::shared_ptr<const detail::MpiComm> comm) : comm_(std::move(comm)) {
  RT_ASSERT(comm_ != nullptr);
  RT_CHECK_MPI(MPI_Comm_size(comm_->get(), &size_));
  RT_CHECK_MPI(MPI_Comm_rank(comm_->get(), &rank_));
  RT_ASSERT(size_ > 1);  // a group of one is Group::single()
}

void Group::enable_device_tensors() {
  if (size_ == 1 || nccl_ != nullptr) return;
  nccl_ = detail::make_nccl_comm(comm_->get(), rank_, size_);
}

const detail::NcclComm& Group::nccl(const char* op) const {
  RT_REQUIRE(nccl_ != nullptr, "Group::", op, ": a device tensor reached a group of ", size_,
             " ranks made without NCCL (ParallelContext::create with Device::cuda makes them, "
             "or Group::enable_device_tensors)");
  return *nccl_;
}

Group Group::split_multi(int color, int key) const {
  RT_REQUIRE(color >= 0, "Group::split: color must be >= 0 (got ", color, ")");
  MPI_Comm part = MPI_COMM_NULL;
  RT_CHECK_MPI(MPI_Comm_split(comm_->get(), color, key, &part));
  Group group = adopt(part);
  if (nccl_ != nullptr) group.enable_device_tensors();
  return group;
}

Group Group::split_by_node_multi() const {
  MPI_Comm node = MPI_COMM_NULL;
  RT_CHECK_MPI(
      MPI_Comm_split_type(comm_->get(), MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  return adopt(node);
}

void Group::all_reduce_sum_multi(Tensor& t) const {
  const CommunicationScope timed;
  if (on_device(t, "all_reduce_sum")) return detail::nccl_all_reduce_sum(nccl("all_reduce_sum"), t);
  const MpiBuffer buffer = host_buffer(t, "all_reduce_sum");
  RT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buffer.data, buffer.count, buffer.type, MPI_SUM,
                             comm_->get()));
}

double Group::all_reduce_sum_multi(double value) const {
  const CommunicationScope timed;
  RT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, comm_->get()));
  return value;
}

Tensor Group::all_gather_multi(const Tensor& local) const {
  const CommunicationScope timed;
  RT_REQUIRE(local.rank() >= 1, "Group::all_gather: gathers along dimension 0, so it needs a "
             "tensor of rank >= 1 (got shape ", shape_str(local.shape()), ")");
  Shape shape = local.shape();
  shape[0] *= size_;
  Tensor gathered = Tensor::empty(shape, local.dtype(), local.device());  // (size * n, ...)
  if (on_device(local, "all_gather")) {
    detail::nccl_all_gather(nccl("all_gather"), local, gathered);
    return gathered;
  }
  const MpiBuffer in = host_buffer(local, "all_gather");
  RT_CHECK_MPI(MPI_Allgather(in.data, in.count, in.type, gathered.raw(), in.count, in.type,
                             comm_->get()));
  return gathered;
}

Tensor Group::reduce_scatter_sum_multi(const Tensor& full) const {
  const CommunicationScope timed;
  const Shape block = require_blocks(full, size_, "reduce_scatter_sum");
  Tensor part = Tensor::empty(block, full.dtype(), full.device());  // (n, ...)
  if (on_device(full, "reduce_scatter_sum")) {
    detail::nccl_reduce_scatter_sum(nccl("reduce_scatter_sum"), full, part);
    return part;
  }
  const MpiBuffer in = host_buffer(full, "reduce_scatter_sum");
  RT_CHECK_MPI(MPI_Reduce_scatter_block(in.data, part.raw(), in.count / size_, in.type, MPI_SUM,
                                        comm_->get()));
  return part;
}

CollectiveRequest Group::reduce_scatter_sum_async_multi(const Tensor& full, Tensor& shard) const {
  const CommunicationScope timed;
  const char* const op = "reduce_scatter_sum_async";
  require_shape(shard, require_blocks(full, size_, op), "Group::reduce_scatter_sum_async: shard");
  require_same_type(full, {&shard}, "Group::reduce_scatter_sum_async");
  if (on_device(full, op))
    return CollectiveRequest(detail::nccl_reduce_scatter_sum_async(nccl(op), full, shard));
  const MpiBuffer in = host_buffer(full, op), out = host_buffer(shard, op);
  auto started = std::make_unique<detail::MpiRequest>(std::vector<Tensor>{full, shard}, 1);
  RT_CHECK_MPI(MPI_Ireduce_scatter_block(in.data, out.data, out.count, in.type, MPI_SUM,
                                         comm_->get(), started->handle()));
  return CollectiveRequest(std::move(started));
}

CollectiveRequest Group::all_gather_in_place_async_multi(Tensor& full) const {
  const CommunicationScope timed;
  const char* const op = "all_gather_in_place_async";
  require_blocks(full, size_, op);
  if (on_device(full, op))
    return CollectiveRequest(detail::nccl_all_gather_in_place_async(nccl(op), full));
  const MpiBuffer buffer = host_buffer(full, op);
  auto started = std::make_unique<detail::MpiRequest>(std::vector<Tensor>{full}, 1);
  // MPI_IN_PLACE: this rank's block already sits at its place in the receive buffer.
  RT_CHECK_MPI(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer.data,
                              buffer.count / size_, buffer.type, comm_->get(),
                              started->handle()));
  return CollectiveRequest(std::move(started));
}

void Group::broadcast_multi(Tensor& t, int root) const {
  const CommunicationScope timed;
  RT_REQUIRE(root >= 0 && root < size_, "Group::broadcast: root ", root,
             " is not a rank of this group of ", size_);
  if (on_device(t, "broadcast")) return detail::nccl_broadcast(nccl("broadcast"), t, root);
  const MpiBuffer buffer = host_buffer(t, "broadcast");
  RT_CHECK_MPI(MPI_Bcast(buffer.data, buffer.count, buffer.type, root, comm_->get()));
}

void Group::send(const Tensor& t, int peer) const {
  const CommunicationScope timed;
  require_peer(peer, rank_, size_, "send");
  if (on_device(t, "send")) return detail::nccl_send_recv(nccl("send"), &t, nullptr, peer);
  const MpiBuffer buffer = host_buffer(t, "send");
  RT_CHECK_MPI(MPI_Send(buffer.data, buffer.count, buffer.type, peer, kPointToPointTag,
                        comm_->get()));
}

void Group::recv(Tensor& t, int peer) const {
  const CommunicationScope timed;
  require_peer(peer, rank_, size_, "recv");
  if (on_device(t, "recv")) return detail::nccl_send_recv(nccl("recv"), nullptr, &t, peer);
  const MpiBuffer buffer = host_buffer(t, "recv");
  MPI_Status status;
  RT_CHECK_MPI(MPI_Recv(buffer.data, buffer.count, buffer.type, peer, kPointToPointTag,
                        comm_->get(), &status));
  require_whole_message(status, buffer, t, peer, "recv");
}

void Group::send_recv(const Tensor& out, Tensor& in, int peer) const {
  const CommunicationScope timed;
  require_peer(peer, rank_, size_, "send_recv");
  require_same_device(out, in, "send_recv");
  if (on_device(out, "send_recv") && on_device(in, "send_recv"))
    return detail::nccl_send_recv(nccl("send_recv"), &out, &in, peer);
  const MpiBuffer sent = host_buffer(out, "send_recv");
  const MpiBuffer received = host_buffer(in, "send_recv");
  MPI_Status status;
  RT_CHECK_MPI(MPI_Sendrecv(sent.data, sent.count, sent.type, peer, kPointToPointTag,
                            received.data, received.count, received.type, peer,
                            kPointToPointTag, comm_->get(), &status));
  require_whole_message(status, received, in, peer, "send_recv");
}

CollectiveRequest Group::shift_async_multi(const Tensor& out, int to, Tensor& in, int from) const {
  const CommunicationScope timed;
  const char* const op = "shift_async";
  require_peer(to, rank_, size_, op);
  require_peer(from, rank_, size_, op);
  require_same_device(out, in, op);
  if (on_device(out, op) && on_device(in, op))
    return CollectiveRequest(detail::nccl_shift_async(nccl(op), out, to, in, from));
  const MpiBuffer sent = host_buffer(out, op), received = host_buffer(in, op);
  auto started = std::make_unique<detail::MpiRequest>(std::vector<Tensor>{out, in}, 2);
  // Both posted before either is waited for: no order of ranks can deadlock.
  RT_CHECK_MPI(MPI_Irecv(received.data, received.count, received.type, from, kPointToPointTag,
                         comm_->get(), started->handle(0)));
  RT_CHECK_MPI(MPI_Isend(sent.data, sent.count, sent.type, to, kPointToPointTag, comm_->get(),
                         started->handle(1)));
  return CollectiveRequest(std::move(started));
}

void Group::barrier_multi() const {
  const CommunicationScope timed;
  RT_CHECK_MPI(MPI_Barrier(comm_->get()));
}

}  // namespace ratrain
