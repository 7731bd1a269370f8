// The 1F1B pipeline schedule (PipeDream-Flush, as Megatron-LM runs it): the order in
// which one pipeline stage runs the forward and backward passes of the micro-batches
// of one optimizer step. A pure function, unit-tested against written-out lists.
//
// Stage s of S with M micro-batches first runs min(S - 1 - s, M) forward passes
// (warm-up), then alternates one forward and one backward while forwards remain
// (steady state), then runs the remaining backwards (cool-down). At most S - s
// micro-batches are in flight on stage s, which bounds its saved activations.
//
// Worked example, S = 4, M = 6 (F3 = forward of micro-batch 3, B0 = backward of 0):
//   stage 0: F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5
//   stage 3: F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5
#pragma once

#include <string>
#include <vector>

namespace ratrain {

struct PipelineAction {
  enum class Kind { forward, backward };
  Kind kind;
  int micro_batch;
  bool operator==(const PipelineAction&) const = default;
};

// The actions of `stage` (0-based) of `stages` for `micro_batches` >= 1, in order:
// every micro-batch once forward, then once backward, each backward after its forward.
std::vector<PipelineAction> one_f_one_b(int stages, int stage, int micro_batches);

// "F0 F1 B0 ..." for tests and logs.
std::string to_string(const std::vector<PipelineAction>& actions);

}  // namespace ratrain
