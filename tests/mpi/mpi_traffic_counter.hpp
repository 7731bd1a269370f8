// Counts the communication of one rank, per MPI call, for the MPI tests that check what
// the parallel code sends (test_sequence_scan.cpp, test_sp_traffic.cpp) or when
// (test_model_parallel.cpp: the gradient buckets' reduce-scatters start during backward).
//
// How: MPI's profiling interface. This header DEFINES the MPI entry points that Group
// uses (parallel/mpi_group.cpp: MPI_Allgather, MPI_Reduce_scatter_block, MPI_Allreduce,
// MPI_Bcast, MPI_Send, MPI_Recv, MPI_Sendrecv, MPI_Barrier, and the non-blocking
// MPI_Iallgather, MPI_Ireduce_scatter_block, MPI_Wait, MPI_Test); the linker takes them over
// the library's, whose implementations stay reachable as PMPI_*, to which each definition
// forwards after tallying. So include it in exactly ONE translation unit of a test
// executable.
//
// Phases: a call is tallied only inside traffic_of(body), into the Traffic that call
// returns; calls outside (MPI startup, the gtest main's verdict, the tests' own
// bookkeeping) are not counted. traffic_of nests: the innermost one records.
// calls_so_far(call) reads the innermost recording while its body still runs, to place
// calls relative to other events.
//
// Bytes, per rank and call (the logical payload, whatever algorithm MPI runs):
//   call             sent                                  received
//   all-gather       its own block, once                   the S - 1 other blocks
//   reduce-scatter   the S - 1 blocks other ranks keep     S - 1 contributions to its block
//   all-reduce       its whole vector                      S - 1 contributions
//   broadcast        the vector at the root, else 0        the vector, except at the root
//   send             the message                           0
//   recv             0                                     the receive buffer (Group
//   send-recv        the outgoing message                  requires the message to fill it)
//   barrier          0                                     0
//   wait, test       0                                     0
// (S = the communicator's size.) A non-blocking all-gather or reduce-scatter counts as
// its blocking twin does, when it starts; an in-place all-gather sends its own block.
// Every count is exact, so tests compare with ==.
#pragma once

#include <mpi.h>

#include <array>
#include <cstddef>
#include <iterator>
#include <ostream>

namespace ratrain::test {

// The MPI functions Group calls, one tally each.
enum class MpiCall : std::size_t {
  all_gather, reduce_scatter, all_reduce, broadcast, send, recv, send_recv, barrier,
  all_gather_start, reduce_scatter_start, wait, test, count
};
inline constexpr const char* kMpiCallNames[] = {
    "all-gather", "reduce-scatter", "all-reduce", "broadcast", "send", "recv", "send-recv",
    "barrier", "all-gather (non-blocking)", "reduce-scatter (non-blocking)", "wait", "test"};
static_assert(std::size(kMpiCallNames) == static_cast<std::size_t>(MpiCall::count));

struct CallTraffic {
  long long calls = 0;
  long long sent = 0;      // bytes
  long long received = 0;  // bytes

  CallTraffic& operator+=(const CallTraffic& o) {
    calls += o.calls;
    sent += o.sent;
    received += o.received;
    return *this;
  }
  bool operator==(const CallTraffic&) const = default;
};

// One phase's traffic on this rank, per call.
struct Traffic {
  std::array<CallTraffic, static_cast<std::size_t>(MpiCall::count)> by_call{};

  CallTraffic& operator[](MpiCall call) { return by_call[static_cast<std::size_t>(call)]; }
  const CallTraffic& operator[](MpiCall call) const {
    return by_call[static_cast<std::size_t>(call)];
  }
  CallTraffic total() const {
    CallTraffic sum;
    for (const CallTraffic& c : by_call) sum += c;
    return sum;
  }
  Traffic& operator+=(const Traffic& o) {
    for (std::size_t i = 0; i < by_call.size(); ++i) by_call[i] += o.by_call[i];
    return *this;
  }
  bool operator==(const Traffic&) const = default;
};

// For gtest's failure messages: "{calls, sent, received}", per call kind that occurred.
inline std::ostream& operator<<(std::ostream& os, const CallTraffic& c) {
  return os << "{" << c.calls << " calls, " << c.sent << " B sent, " << c.received
            << " B received}";
}
inline std::ostream& operator<<(std::ostream& os, const Traffic& t) {
  os << "[";
  for (std::size_t i = 0; i < t.by_call.size(); ++i)
    if (t.by_call[i].calls > 0) os << " " << kMpiCallNames[i] << " " << t.by_call[i];
  return os << " ]";
}

namespace detail {

inline Traffic* recording = nullptr;  // the innermost traffic_of's tally, if any

inline long long bytes_of(long long count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  return count * size;
}

inline int size_of(MPI_Comm comm) {
  int size = 0;
  PMPI_Comm_size(comm, &size);
  return size;
}

inline void tally(MpiCall call, long long sent, long long received) {
  if (recording == nullptr) return;
  (*recording)[call] += CallTraffic{.calls = 1, .sent = sent, .received = received};
}

// The tallies of the two collectives that have a non-blocking twin.
inline void tally_all_gather(MpiCall call, int block_count, MPI_Datatype type, MPI_Comm comm) {
  tally(call, bytes_of(block_count, type), (size_of(comm) - 1) * bytes_of(block_count, type));
}
inline void tally_reduce_scatter(MpiCall call, int block_count, MPI_Datatype type,
                                 MPI_Comm comm) {
  const long long others = (size_of(comm) - 1) * bytes_of(block_count, type);
  tally(call, others, others);
}

// Restores the enclosing recording even when the body throws.
class Recording {
 public:
  explicit Recording(Traffic& into) : enclosing_(recording) { recording = &into; }
  ~Recording() { recording = enclosing_; }
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

 private:
  Traffic* enclosing_;
};

}  // namespace detail

// The calls of kind `call` the innermost traffic_of has tallied so far (0 outside one).
inline long long calls_so_far(MpiCall call) {
  return detail::recording == nullptr ? 0 : (*detail::recording)[call].calls;
}

// Runs body() and returns what this rank's MPI calls moved meanwhile.
template <typename Body>
Traffic traffic_of(Body&& body) {
  Traffic traffic;
  const detail::Recording recording(traffic);
  body();
  return traffic;
}

}  // namespace ratrain::test

extern "C" {
int MPI_Allgather(const void* send, int send_count, MPI_Datatype send_type, void* recv,
                  int recv_count, MPI_Datatype recv_type, MPI_Comm comm) {
  ratrain::test::detail::tally_all_gather(ratrain::test::MpiCall::all_gather, recv_count,
                                          recv_type, comm);
  return PMPI_Allgather(send, send_count, send_type, recv, recv_count, recv_type, comm);
}
int MPI_Reduce_scatter_block(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op,
                             MPI_Comm comm) {
  ratrain::test::detail::tally_reduce_scatter(ratrain::test::MpiCall::reduce_scatter, count,
                                              type, comm);
  return PMPI_Reduce_scatter_block(send, recv, count, type, op, comm);
}
int MPI_Iallgather(const void* send, int send_count, MPI_Datatype send_type, void* recv,
                   int recv_count, MPI_Datatype recv_type, MPI_Comm comm, MPI_Request* request) {
  ratrain::test::detail::tally_all_gather(ratrain::test::MpiCall::all_gather_start, recv_count,
                                          recv_type, comm);
  return PMPI_Iallgather(send, send_count, send_type, recv, recv_count, recv_type, comm,
                         request);
}
int MPI_Ireduce_scatter_block(const void* send, void* recv, int count, MPI_Datatype type,
                              MPI_Op op, MPI_Comm comm, MPI_Request* request) {
  ratrain::test::detail::tally_reduce_scatter(ratrain::test::MpiCall::reduce_scatter_start,
                                              count, type, comm);
  return PMPI_Ireduce_scatter_block(send, recv, count, type, op, comm, request);
}
int MPI_Wait(MPI_Request* request, MPI_Status* status) {
  ratrain::test::detail::tally(ratrain::test::MpiCall::wait, 0, 0);
  return PMPI_Wait(request, status);
}
int MPI_Test(MPI_Request* request, int* flag, MPI_Status* status) {
  ratrain::test::detail::tally(ratrain::test::MpiCall::test, 0, 0);
  return PMPI_Test(request, flag, status);
}
int MPI_Allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op,
                  MPI_Comm comm) {
  using namespace ratrain::test::detail;
  tally(ratrain::test::MpiCall::all_reduce, bytes_of(count, type),
        (size_of(comm) - 1) * bytes_of(count, type));
  return PMPI_Allreduce(send, recv, count, type, op, comm);
}
int MPI_Bcast(void* buffer, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  using namespace ratrain::test::detail;
  int rank = 0;
  PMPI_Comm_rank(comm, &rank);
  const long long bytes = bytes_of(count, type);
  tally(ratrain::test::MpiCall::broadcast, rank == root ? bytes : 0, rank == root ? 0 : bytes);
  return PMPI_Bcast(buffer, count, type, root, comm);
}
int MPI_Send(const void* buffer, int count, MPI_Datatype type, int peer, int tag, MPI_Comm comm) {
  using namespace ratrain::test::detail;
  tally(ratrain::test::MpiCall::send, bytes_of(count, type), 0);
  return PMPI_Send(buffer, count, type, peer, tag, comm);
}
int MPI_Recv(void* buffer, int count, MPI_Datatype type, int peer, int tag, MPI_Comm comm,
             MPI_Status* status) {
  using namespace ratrain::test::detail;
  tally(ratrain::test::MpiCall::recv, 0, bytes_of(count, type));
  return PMPI_Recv(buffer, count, type, peer, tag, comm, status);
}
int MPI_Sendrecv(const void* send, int send_count, MPI_Datatype send_type, int destination,
                 int send_tag, void* recv, int recv_count, MPI_Datatype recv_type, int source,
                 int recv_tag, MPI_Comm comm, MPI_Status* status) {
  using namespace ratrain::test::detail;
  tally(ratrain::test::MpiCall::send_recv, bytes_of(send_count, send_type),
        bytes_of(recv_count, recv_type));
  return PMPI_Sendrecv(send, send_count, send_type, destination, send_tag, recv, recv_count,
                       recv_type, source, recv_tag, comm, status);
}
int MPI_Barrier(MPI_Comm comm) {
  ratrain::test::detail::tally(ratrain::test::MpiCall::barrier, 0, 0);
  return PMPI_Barrier(comm);
}
}  // extern "C"
