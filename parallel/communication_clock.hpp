// Host time spent in communication: inside Group's collectives and point-to-point calls
// and in waits on their non-blocking requests (parallel/group.hpp), so that every line of
// metrics.jsonl can split a step into compute and communication (DESIGN.md "Observable").
//
// What it measures is the time the calling thread was inside those calls: with MPI on host
// tensors that is the transfer plus any wait for slower ranks (load imbalance shows here);
// NCCL calls on device tensors only enqueue work on the GPU and return, so their transfer
// time counts as communication only where a wait blocks the host, and otherwise shows as
// compute. Calls nested in a timed call are counted once.
#pragma once

namespace ratrain {

// Seconds this process has spent in communication calls so far.
double communication_seconds();

// Adds its lifetime to communication_seconds(), unless an enclosing scope already does.
class CommunicationScope {
 public:
  CommunicationScope();
  ~CommunicationScope();
  CommunicationScope(const CommunicationScope&) = delete;
  CommunicationScope& operator=(const CommunicationScope&) = delete;

 private:
  bool outermost_;
  double start_ = 0;
};

}  // namespace ratrain
