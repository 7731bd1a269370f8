// The NCCL backend of a build without NCCL (nccl_comm.hpp): device tensors cannot cross
// ranks, and the first attempt to make a group take them says so.
#include "parallel/nccl_comm.hpp"

#include "runtime/error.hpp"

namespace ratrain::detail {

class NcclComm {};

namespace {
[[noreturn]] void no_nccl() {
  RT_FAIL("device tensors across ranks need NCCL, and this build has none (a CUDA build finds "
          "NCCL beside the CUDA toolkit or in the system paths)");
}
}  // namespace

bool nccl_available() { return false; }
std::shared_ptr<const NcclComm> make_nccl_comm(MPI_Comm, int, int) { no_nccl(); }

// Without a communicator there is nothing to call these with; they fail all the same.
void nccl_all_reduce_sum(const NcclComm&, Tensor&) { no_nccl(); }
void nccl_all_gather(const NcclComm&, const Tensor&, Tensor&) { no_nccl(); }
void nccl_reduce_scatter_sum(const NcclComm&, const Tensor&, Tensor&) { no_nccl(); }
std::unique_ptr<NcclRequest> nccl_reduce_scatter_sum_async(const NcclComm&, const Tensor&,
                                                           Tensor&) {
  no_nccl();
}
std::unique_ptr<NcclRequest> nccl_all_gather_in_place_async(const NcclComm&, Tensor&) {
  no_nccl();
}
void nccl_broadcast(const NcclComm&, Tensor&, int) { no_nccl(); }
void nccl_send_recv(const NcclComm&, const Tensor*, Tensor*, int) { no_nccl(); }
std::unique_ptr<NcclRequest> nccl_shift_async(const NcclComm&, const Tensor&, int, Tensor&, int) {
  no_nccl();
}

NcclRequest::NcclRequest(std::vector<Tensor> buffers, void* done_event)
    : buffers_(std::move(buffers)), done_(done_event), exceptions_at_start_(0) {}
NcclRequest::~NcclRequest() = default;
bool NcclRequest::test() { return true; }
void NcclRequest::wait() {}

}  // namespace ratrain::detail
