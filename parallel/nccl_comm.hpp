// The NCCL backend of Group (group.hpp): the collectives of a group of several ranks on
// DEVICE tensors. Internal to parallel/; callers use Group, which routes a device tensor
// here and a host tensor to MPI (mpi_group.cpp).
//
// Made once per group (Group::enable_device_tensors, called by ParallelContext::create
// for a CUDA run): rank 0 of the group asks NCCL for a unique id, MPI broadcasts it over
// the group's communicator, every rank joins. Each process drives one GPU, bound before
// (bind_local_device in runtime/device_memory.hpp).
//
// Streams. Kernels run on the compute stream (kernels/cuda/cuda_ops.hpp). NCCL runs on one
// communication stream per process, shared by every group, so NCCL operations execute in
// the order the program issues them on every rank: as the MPI path, the ranks of a group
// must issue the same collectives in the same order, and a single stream keeps operations
// of different groups from overtaking each other into a cross-group deadlock. Each
// operation waits (an event) for the work the compute stream had queued when it was
// issued, so it reads finished inputs; then:
// - a blocking call makes the compute stream wait for it (another event) and returns
//   without synchronising the host: whatever the program queues next, kernels and host
//   copies alike, sees the result;
// - an `_async` call returns a request; wait() makes the compute stream wait, test()
//   asks whether it is done. Meanwhile the compute stream runs on: that is the overlap.
// Memory: runtime's caching allocator reuses a freed block at once for later work of
// the compute stream. A blocking operation has been joined into the compute stream
// before any tensor it used can be freed; a request holds its tensors until wait(),
// after which the compute stream is joined too. So no block is reused while NCCL may
// still touch it.
//
// Errors: every NCCL call goes through RT_CHECK_NCCL (nccl_comm.cpp), naming the call,
// NCCL's error string and last error, and the world rank. A rank that dies leaves its
// peers waiting inside NCCL kernels; the job's launcher (or ctest's TIMEOUT) ends it.
#pragma once

#include <mpi.h>

#include <memory>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain::detail {

// True in a build with NCCL (a CUDA build that found it); otherwise every function
// below that needs NCCL fails, saying so.
bool nccl_available();

// An NCCL communicator over the ranks of one MPI communicator, destroyed with the last
// group that shares it. Opaque outside nccl_comm.cpp.
class NcclComm;
// Collective over `comm` (rank and size as MPI numbers them there).
std::shared_ptr<const NcclComm> make_nccl_comm(MPI_Comm comm, int rank, int size);

// A started `_async` NCCL operation and the tensors it works on (see the header comment
// for wait and test). Destroyed in flight: waits in normal control flow; while an
// exception unwinds it keeps its tensors forever instead (the CollectiveRequest policy of
// group.hpp: the ranks may be out of step, NCCL may still write into them).
class NcclRequest {
 public:
  NcclRequest(std::vector<Tensor> buffers, void* done_event);
  NcclRequest(const NcclRequest&) = delete;
  NcclRequest& operator=(const NcclRequest&) = delete;
  ~NcclRequest();

  bool test();
  void wait();

 private:
  std::vector<Tensor> buffers_;
  void* done_;  // the cudaEvent_t recorded after the operation on the communication stream
  int exceptions_at_start_;
};

// The operations, with Group's semantics; arguments are checked by the caller
// (mpi_group.cpp) before they get here, identically on every rank.
void nccl_all_reduce_sum(const NcclComm& comm, Tensor& t);
void nccl_all_gather(const NcclComm& comm, const Tensor& local, Tensor& gathered);
void nccl_reduce_scatter_sum(const NcclComm& comm, const Tensor& full, Tensor& part);
std::unique_ptr<NcclRequest> nccl_reduce_scatter_sum_async(const NcclComm& comm,
                                                           const Tensor& full, Tensor& shard);
std::unique_ptr<NcclRequest> nccl_all_gather_in_place_async(const NcclComm& comm, Tensor& full);
void nccl_broadcast(const NcclComm& comm, Tensor& t, int root);
// Point to point: `out` may be undefined (nothing sent) or `in` (nothing received).
void nccl_send_recv(const NcclComm& comm, const Tensor* out, Tensor* in, int peer);
// Group::shift_async: `out` to rank `to`, `in` from rank `from`, in one NCCL group.
std::unique_ptr<NcclRequest> nccl_shift_async(const NcclComm& comm, const Tensor& out, int to,
                                              Tensor& in, int from);

}  // namespace ratrain::detail
