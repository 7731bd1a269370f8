// The whole model's parameters as global tensors on one rank, assembled from every
// rank's parts: over tensor parallelism by gather_parameter (parameter_parts.hpp), over
// pipeline parallelism by each stage sending its parameters to the first. What a model
// file holds (io/model_file.hpp), and what the tests compare with one process.
#pragma once

#include <functional>

#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

// entry: the parameter's name and global shape; global: its tensor on the host, in the
// optimizer's precision (the f32 master copy where there is one).
using GlobalParameterVisitor =
    std::function<void(const ParamEntry& entry, const Tensor& global)>;

// Calls `visit` on world rank 0 for every parameter of the model of `config`, once each
// (the tied embedding from the first stage), in the order of the one-process parameter
// table; the other ranks call nothing. `store` is this rank's part of its stage.
// Collective over ctx.tp and ctx.pp: every rank calls it.
void gather_model_parameters(const ModelConfig& config, const ParamStore& store,
                             const ParallelContext& ctx, const GlobalParameterVisitor& visit);

}  // namespace ratrain
