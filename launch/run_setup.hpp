// What `train` and `eval` share: resolving the config against the data (vocabulary,
// EOS id), opening token files, and building the model from fresh initialisation or
// from a model file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "io/run_config.hpp"
#include "io/token_dataset.hpp"
#include "model/rat_lm.hpp"

namespace ratrain {

struct RunData {
  std::optional<TokenDataset> train;
  std::optional<TokenDataset> val;
  std::int32_t eos_id = -1;
};

// Opens data.train (if `need_train`) and data.val, fills model.vocab_size when it is 0,
// checks that the data fits the vocabulary, and validates the whole config.
RunData open_run_data(RunConfig& config, bool need_train);

// A model of the config's shape, initialised from model.weights or freshly, holding
// the parameter parts of this rank of `ctx` (which must follow config.parallel).
std::unique_ptr<RatLM> build_model(const RunConfig& config,
                                   const ParallelContext& ctx = ParallelContext::single_process());

// Creates the run directory (and parents); an error names it if that fails.
void make_run_dir(const std::string& dir);

}  // namespace ratrain
