// Runs one stage's side of a pipeline plan (model/pipeline_plan.hpp): the receives,
// the passes and the sends, in the plan's order. The stage's model is behind
// PipelineStageWork, so this file knows the transfers and nothing of layers, and the
// model knows its passes and nothing of the transfers.
#pragma once

#include <vector>

#include "model/pipeline_plan.hpp"
#include "parallel/group.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// One pipeline stage's buffers and passes. Activations and their gradients are
// (N, d) for a micro-batch of N tokens (rows * positions of this rank).
class PipelineStageWork {
 public:
  virtual ~PipelineStageWork() = default;
  // Micro-batch m's input activation, received from the previous stage before forward(m).
  virtual Tensor& input(int micro_batch) = 0;
  // Its output activation once forward(m) has run, sent to the next stage.
  virtual const Tensor& output(int micro_batch) = 0;
  // d loss / d output of micro-batch m, received from the next stage before backward(m).
  virtual Tensor& output_grad(int micro_batch) = 0;
  // d loss / d input once backward(m) has run, sent to the previous stage.
  virtual const Tensor& input_grad(int micro_batch) = 0;
  virtual void forward(int micro_batch) = 0;
  virtual void backward(int micro_batch) = 0;
};

// Runs `plan`, the plan of stage pp.rank() of pp.size(), with `work`. Collective over
// `pp`: every stage runs its own plan for the same micro-batches at the same time.
void run_pipeline(const Group& pp, const std::vector<PipelineStep>& plan, PipelineStageWork& work);

}  // namespace ratrain
