// Traffic: every rank gathers its stage's parameters over its tp group (the ranks of one
// stage, so stages proceed independently). In the pipeline of world rank 0 (the ranks
// with tp, sp and dp coordinate 0), stage s > 0 then sends each of its tensors to stage
// 0, in its table's order, and world rank 0 receives them stage by stage in that order.
// No deadlock: a sender waits only on its own stage's tp group and on rank 0, and rank 0
// first finishes its own stage's gathers (the only ones its tp group waits on), then
// takes the stages' messages in exactly the order they are sent.
#include "model/gather_model.hpp"

#include "model/parameter_parts.hpp"
#include "model/rat_lm.hpp"

namespace ratrain {

void gather_model_parameters(const ModelConfig& config, const ParamStore& store,
                             const ParallelContext& ctx, const GlobalParameterVisitor& visit) {
  const bool writer = ctx.world_rank == 0;
  const bool in_writers_pipeline = ctx.coords.tp == 0 && ctx.coords.sp == 0 && ctx.coords.dp == 0;
  const int stages = ctx.pp.size(), mine = ctx.pp.rank();
  for (int s = 0; s < stages; ++s) {
    if (s != mine && !writer) continue;
    const ParamTable table =
        RatLM::make_param_table(config, ctx.tp, pipeline_stage(config.num_layers, stages, s));
    for (const ParamEntry& e : table.entries()) {
      // The last stage's head is the first stage's embedding.
      if (e.copies == StageCopies::first_and_last && s != 0) continue;
      if (s == mine) {
        const Tensor global = gather_parameter(store, e, ctx.tp);
        if (writer) visit(e, global);
        else if (in_writers_pipeline) ctx.pp.send(global, 0);
      } else {
        Tensor global = Tensor::empty(e.global_shape, store.optimizer_values().dtype());
        ctx.pp.recv(global, s);
        visit(e, global);
      }
    }
  }
}

}  // namespace ratrain
