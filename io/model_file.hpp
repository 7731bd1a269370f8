// Model weight files in the fixture format of RATPLUS.md: datasets `params/<name>` (the
// authors' parameter names, tied head = `embedding.wte.weight`) and a root attribute
// `config` holding the model configuration as JSON. `ratrain train` writes one at the
// end of a run, `train.init_from` and `ratrain eval` read it, and `ratrain verify`
// reads the golden fixtures through the same code.
#pragma once

#include <string>

#include "io/h5.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

// Parses the fixture `config` JSON: vocab_size, d_model, num_heads, num_layers,
// ffn_mult, rope_base, and dilation/window/initial each an int or a per-layer list.
// Errors name `source` (e.g. the file) and the missing or malformed key.
ModelConfig model_config_from_json(const std::string& json, const std::string& source);
std::string model_config_to_json(const ModelConfig& config);

// Reads every parameter of `store` from `<group>/<name>`, the global tensor, keeping
// this rank's part (converting to the store's dtype): on a pipeline stage only that
// stage's parameters. A missing dataset or a shape mismatch is an error naming file and
// dataset.
void load_params(const h5::File& file, const std::string& group, ParamStore& store);

// A whole weight file (config attribute + params/<name>, global tensors, every parameter
// once), assembled from the TP parts and the pipeline stages (model/gather_model.hpp) and
// written by world rank 0 alone. Collective over ctx.tp and ctx.pp; ranks other than 0
// write nothing.
void save_model_file(const std::string& path, const ModelConfig& config, const ParamStore& store,
                     const ParallelContext& ctx = ParallelContext::single_process());
ModelConfig read_model_file_config(const std::string& path);

}  // namespace ratrain
