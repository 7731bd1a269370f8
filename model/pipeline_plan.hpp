// The point-to-point transfers of one pipeline stage around its forward and backward
// passes (DESIGN.md "Parallel layout", PP), for blocking send and receive
// (parallel/group.hpp). A pure function of (stages, stage, micro-batches), unit-tested
// like the schedule it extends (parallel/pipeline_schedule.hpp).
//
// Forward of micro-batch m on stage s: its input activation comes from stage s - 1 (the
// first stage embeds the tokens instead), its output goes to s + 1 (the last stage keeps
// it for the loss). Backward: the gradient of its output comes from s + 1 (the last
// stage starts from the loss), the gradient of its input goes to s - 1 (the first stage
// ends in the embedding).
//
// Why no deadlock. A blocking send may wait until the peer posts the matching receive
// (MPI_Send of a large message does), so two neighbours that both send first wait for
// each other forever. 1F1B's steady state has exactly that: stage s runs F(m) then B(j),
// sending activation m to s + 1 and then waiting for gradient j from it, while s + 1
// runs B(j) then F(m), sending gradient j and then waiting for activation m. Such a
// crossed pair is fused, on both stages, into one send_recv (Megatron's
// send_forward_recv_backward / send_backward_recv_forward). The rule is symmetric by
// construction: a stage fuses a send with the next action's receive from the same
// neighbour exactly when that neighbour runs the mirrored pair back to back. After
// fusing, both stages of a link (s, s + 1) run one sequence of matched events (send with
// recv, send_recv with send_recv) in the same order; tests/unit/model/test_pipeline.cpp
// checks it for every S <= 8, M <= 12. Then no two neighbours wait on each other: both
// would be blocked on events of their one link, and since an event completes on both
// ends at once (taking the worst case, unbuffered sends; buffering only lets a sender
// run ahead) they have completed the same events, so they wait on the same next event,
// which matches itself. Longer wait-for cycles cannot form: a stage talks only to its
// two neighbours, and a cycle in a chain is such a pair. The ranks of one stage (its tp
// and sp groups) run the same plan and meet in the same collectives inside each pass,
// so the argument holds for a stage as a whole.
//
// Worked example, S = 2 stages, M = 3 micro-batches ("F1 >a1<g0" = forward of
// micro-batch 1, its output sent in one send_recv with the receive of gradient 0):
//   stage 0: F0 >a0   F1 >a1<g0   B0         F2 >a2<g1   B1         <g2 B2
//   stage 1: <a0 F0   B0 >g0<a1   F1         B1 >g1<a2   F2         B2 >g2
#pragma once

#include <vector>

#include "parallel/pipeline_schedule.hpp"

namespace ratrain {

struct PipelineStep {
  // Where the action's output goes: nowhere on the last stage's forwards and the first
  // stage's backwards, else to the neighbour, by itself or in one send_recv that also
  // receives the next step's input from that neighbour.
  enum class Output { kept, sent, sent_with_next_input };

  PipelineAction action;
  // A plain receive brings the action's input before it runs. False where the input is
  // made here (the first stage's forwards embed, the last stage's backwards start from
  // the loss) or came with the previous step's send_recv.
  bool receive_input = false;
  Output output = Output::kept;
  bool operator==(const PipelineStep&) const = default;
};

// Stage `stage` of `stages` training on `micro_batches`: one_f_one_b's order with its
// transfers.
std::vector<PipelineStep> training_plan(int stages, int stage, int micro_batches);
// Forward passes only (evaluation): F0 .. F(M-1), each received, run and sent on.
std::vector<PipelineStep> forward_plan(int stages, int stage, int micro_batches);

// The most micro-batches between their forward and backward at any point of `plan`
// (forward_plan: all of them): how many micro-batches' activations the stage keeps.
// They are always consecutive micro-batches, so micro-batch m may use slot m % this.
int max_in_flight(const std::vector<PipelineStep>& plan);

}  // namespace ratrain
