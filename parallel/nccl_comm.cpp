// Group's collectives on device tensors through NCCL (nccl_comm.hpp). Compiled in a
// build with NCCL; nccl_comm_none.cpp stands in otherwise.
#include "parallel/nccl_comm.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <exception>
#include <utility>

#include "parallel/mpi_check.hpp"
#include "runtime/compute_stream.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/log.hpp"

namespace ratrain::detail {
namespace {

bool nccl_ok(ncclResult_t result) { return result == ncclSuccess; }
// "unhandled cuda error (...): <last error> (MPI world rank 1 of 2)".
std::string nccl_describe(ncclResult_t result) {
  int rank = -1, size = 0, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  return concat(ncclGetErrorString(result), ": ", ncclGetLastError(nullptr), " (MPI world rank ",
                rank, " of ", size, ")");
}

}  // namespace
}  // namespace ratrain::detail

// The NCCL checker (STYLE.md item 1), next to its one user as error.hpp asks.
#define RT_CHECK_NCCL(call) \
  RT_CHECK_WITH("NCCL call failed", call, ::ratrain::detail::nccl_ok, ::ratrain::detail::nccl_describe)

namespace ratrain::detail {
namespace {

// The process's communication stream (one for every group: nccl_comm.hpp says why).
cudaStream_t communication_stream() {
  static const cudaStream_t stream = cuda::new_side_stream();
  return stream;
}

cudaEvent_t new_event() {
  cudaEvent_t event = nullptr;
  RT_CHECK_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}

// The communication stream waits for the work the compute stream has queued so far.
void follow_compute() {
  static cudaEvent_t queued = new_event();
  RT_CHECK_CUDA(cudaEventRecord(queued, cuda::compute_stream()));
  RT_CHECK_CUDA(cudaStreamWaitEvent(communication_stream(), queued, 0));
}

// The compute stream waits for `done`, recorded on the communication stream.
void join_compute(cudaEvent_t done) {
  RT_CHECK_CUDA(cudaStreamWaitEvent(cuda::compute_stream(), done, 0));
}

// The compute stream waits for everything queued on the communication stream so far.
void join_compute_now() {
  static cudaEvent_t done = new_event();
  RT_CHECK_CUDA(cudaEventRecord(done, communication_stream()));
  join_compute(done);
}

ncclDataType_t nccl_type(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    default: break;
  }
  RT_FAIL("NCCL group: no NCCL type for a ", dtype_name(t.dtype()), " tensor");
}

size_t count(const Tensor& t) { return static_cast<size_t>(t.numel()); }

// Runs `issue` (NCCL calls on the communication stream) ordered after the compute
// stream's queued work.
template <typename Issue>
void on_communication_stream(Issue&& issue) {
  follow_compute();
  issue(communication_stream());
}

// As on_communication_stream, returning a request that completes after `issue`.
template <typename Issue>
std::unique_ptr<NcclRequest> start(std::vector<Tensor> buffers, Issue&& issue) {
  on_communication_stream(issue);
  cudaEvent_t done = new_event();
  if (const cudaError_t status = cudaEventRecord(done, communication_stream());
      status != cudaSuccess) {
    cudaEventDestroy(done);
    RT_CHECK_CUDA(status);
  }
  return std::make_unique<NcclRequest>(std::move(buffers), done);
}

}  // namespace

class NcclComm {
 public:
  explicit NcclComm(ncclComm_t comm) : comm_(comm) {}
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  // A destructor must not throw: a failure is logged. Work still queued on the
  // communicator finishes first (ncclCommDestroy waits for it).
  ~NcclComm() {
    if (const ncclResult_t r = ncclCommDestroy(comm_); r != ncclSuccess)
      log_warn("ncclCommDestroy failed: ", ncclGetErrorString(r));
  }
  ncclComm_t get() const { return comm_; }

 private:
  ncclComm_t comm_;
};

bool nccl_available() { return true; }

std::shared_ptr<const NcclComm> make_nccl_comm(MPI_Comm comm, int rank, int size) {
  ncclUniqueId id{};
  if (rank == 0) RT_CHECK_NCCL(ncclGetUniqueId(&id));
  RT_CHECK_MPI(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm));
  ncclComm_t nccl = nullptr;
  RT_CHECK_NCCL(ncclCommInitRank(&nccl, size, id, rank));
  return std::make_shared<const NcclComm>(nccl);
}

NcclRequest::NcclRequest(std::vector<Tensor> buffers, void* done_event)
    : buffers_(std::move(buffers)),
      done_(done_event),
      exceptions_at_start_(std::uncaught_exceptions()) {}

NcclRequest::~NcclRequest() {
  if (done_ == nullptr) return;  // waited for
  if (std::uncaught_exceptions() > exceptions_at_start_) {
    log_warn("an NCCL operation was in flight while an exception unwound: its buffers stay "
             "allocated until the job ends");
    static auto* parked = new std::vector<std::vector<Tensor>>;  // never freed, on purpose
    parked->push_back(std::move(buffers_));
    return;
  }
  try {
    wait();
  } catch (const Error& e) {
    log_warn(e.what());
  }
}

bool NcclRequest::test() {
  if (done_ == nullptr) return true;
  const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(done_));
  if (status == cudaErrorNotReady) return false;
  RT_CHECK_CUDA(status);
  wait();  // joins the compute stream and lets the buffers go
  return true;
}

void NcclRequest::wait() {
  if (done_ == nullptr) return;
  auto* done = static_cast<cudaEvent_t>(done_);
  done_ = nullptr;
  join_compute(done);
  RT_CHECK_CUDA(cudaEventDestroy(done));  // destruction waits for nothing: legal in flight
  buffers_.clear();
}

void nccl_all_reduce_sum(const NcclComm& comm, Tensor& t) {
  on_communication_stream([&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclAllReduce(t.raw(), t.raw(), count(t), nccl_type(t), ncclSum, comm.get(), s));
  });
  join_compute_now();
}

void nccl_all_gather(const NcclComm& comm, const Tensor& local, Tensor& gathered) {
  on_communication_stream([&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclAllGather(local.raw(), gathered.raw(), count(local), nccl_type(local),
                                comm.get(), s));
  });
  join_compute_now();
}

void nccl_reduce_scatter_sum(const NcclComm& comm, const Tensor& full, Tensor& part) {
  on_communication_stream([&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclReduceScatter(full.raw(), part.raw(), count(part), nccl_type(full), ncclSum,
                                    comm.get(), s));
  });
  join_compute_now();
}

std::unique_ptr<NcclRequest> nccl_reduce_scatter_sum_async(const NcclComm& comm,
                                                           const Tensor& full, Tensor& shard) {
  return start({full, shard}, [&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclReduceScatter(full.raw(), shard.raw(), count(shard), nccl_type(full),
                                    ncclSum, comm.get(), s));
  });
}

std::unique_ptr<NcclRequest> nccl_all_gather_in_place_async(const NcclComm& comm, Tensor& full) {
  int ranks = 0, rank = 0;
  RT_CHECK_NCCL(ncclCommCount(comm.get(), &ranks));
  RT_CHECK_NCCL(ncclCommUserRank(comm.get(), &rank));
  const std::int64_t block = full.numel() / ranks;
  // NCCL's in-place form: the send buffer is this rank's block of the receive buffer.
  const Tensor mine = full.flat_view(rank * block, {block});
  return start({full}, [&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclAllGather(mine.raw(), full.raw(), count(mine), nccl_type(full), comm.get(),
                                s));
  });
}

void nccl_broadcast(const NcclComm& comm, Tensor& t, int root) {
  on_communication_stream([&](cudaStream_t s) {
    RT_CHECK_NCCL(ncclBroadcast(t.raw(), t.raw(), count(t), nccl_type(t), root, comm.get(), s));
  });
  join_compute_now();
}

namespace {

// Queues on `s` the send of `out` (if any) to `to` and the receive of `in` (if any) from
// `from`, in one NCCL group: they progress together, however large.
void send_and_receive(const NcclComm& comm, const Tensor* out, int to, Tensor* in, int from,
                      cudaStream_t s) {
  RT_CHECK_NCCL(ncclGroupStart());
  if (out) RT_CHECK_NCCL(ncclSend(out->raw(), count(*out), nccl_type(*out), to, comm.get(), s));
  if (in) RT_CHECK_NCCL(ncclRecv(in->raw(), count(*in), nccl_type(*in), from, comm.get(), s));
  RT_CHECK_NCCL(ncclGroupEnd());
}

}  // namespace

std::unique_ptr<NcclRequest> nccl_shift_async(const NcclComm& comm, const Tensor& out, int to,
                                              Tensor& in, int from) {
  return start({out, in}, [&](cudaStream_t s) { send_and_receive(comm, &out, to, &in, from, s); });
}

void nccl_send_recv(const NcclComm& comm, const Tensor* out, Tensor* in, int peer) {
  on_communication_stream([&](cudaStream_t s) { send_and_receive(comm, out, peer, in, peer, s); });
  join_compute_now();
}

}  // namespace ratrain::detail
