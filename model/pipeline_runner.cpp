#include "model/pipeline_runner.hpp"

namespace ratrain {

void run_pipeline(const Group& pp, const std::vector<PipelineStep>& plan, PipelineStageWork& work) {
  const int previous = pp.rank() - 1, next = pp.rank() + 1;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const PipelineStep& step = plan[i];
    const int m = step.action.micro_batch;
    const bool forward = step.action.kind == PipelineAction::Kind::forward;
    // A forward reads from the previous stage and writes to the next; a backward the reverse.
    const int source = forward ? previous : next, destination = forward ? next : previous;
    if (step.receive_input) pp.recv(forward ? work.input(m) : work.output_grad(m), source);
    if (forward) work.forward(m);
    else work.backward(m);
    const Tensor& out = forward ? work.output(m) : work.input_grad(m);
    switch (step.output) {
      case PipelineStep::Output::kept: break;
      case PipelineStep::Output::sent: pp.send(out, destination); break;
      case PipelineStep::Output::sent_with_next_input: {
        // The next action is of the other kind and takes its input from `destination`.
        const int following = plan.at(i + 1).action.micro_batch;
        pp.send_recv(out, forward ? work.output_grad(following) : work.input(following),
                     destination);
        break;
      }
    }
  }
}

}  // namespace ratrain
