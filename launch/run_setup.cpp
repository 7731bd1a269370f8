#include "launch/run_setup.hpp"

#include <filesystem>

#include "io/model_file.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

TokenDataset open_tokens(const std::string& path, const RunConfig& config) {
  return TokenDataset::open(path, config.data.bin_vocab_size);
}

// Architecture fields a weight file must share with the run config.
void require_same_architecture(const ModelConfig& file, const ModelConfig& run,
                               const std::string& path) {
  auto same = [&](std::int64_t a, std::int64_t b, const char* key) {
    RT_REQUIRE(a == b, "model.weights '", path, "' has ", key, " = ", a,
               " but the config says model.", key, " = ", b);
  };
  same(file.vocab_size, run.vocab_size, "vocab_size");
  same(file.d_model, run.d_model, "d_model");
  same(file.num_heads, run.num_heads, "num_heads");
  same(file.num_layers, run.num_layers, "num_layers");
  same(file.ffn_mult, run.ffn_mult, "ffn_mult");
}

}  // namespace

RunData open_run_data(RunConfig& config, bool need_train) {
  RunData data;
  if (need_train) {
    RT_REQUIRE(!config.data.train_path.empty(), "data.train is not set: give the training "
               "token file (ratrain tokenize makes one)");
    data.train.emplace(open_tokens(config.data.train_path, config));
  }
  if (!config.data.val_path.empty()) data.val.emplace(open_tokens(config.data.val_path, config));
  const TokenDataset* reference = data.train ? &*data.train : data.val ? &*data.val : nullptr;

  if (config.model.vocab_size == 0) {
    RT_REQUIRE(reference, "model.vocab_size is 0 (take it from the data) but neither "
               "data.train nor data.val is set");
    config.model.vocab_size = reference->vocab_size();
  }
  for (const TokenDataset* d : {data.train ? &*data.train : nullptr, data.val ? &*data.val : nullptr})
    if (d)
      RT_REQUIRE(d->vocab_size() <= config.model.vocab_size, "token file '", d->path(),
                 "' has vocabulary ", d->vocab_size(), " but model.vocab_size is only ",
                 config.model.vocab_size);
  data.eos_id = config.data.eos_id >= 0 ? config.data.eos_id : reference ? reference->eos_id() : -1;
  validate_run_config(config);
  return data;
}

std::unique_ptr<RatLM> build_model(const RunConfig& config, const ParallelContext& ctx) {
  RT_REQUIRE(config.train.device == Device::cpu || cuda_available(),
             "train.device = cuda but no CUDA device is visible (or this build has no CUDA "
             "backend: configure with the cuda preset)");
  auto model = std::make_unique<RatLM>(config.model, config.train.dtype, config.train.device,
                                       config.train.recompute, ctx);
  const std::string& weights = config.train.weights;
  if (weights.empty()) {
    model->params().initialize(config.train.seed, config.train.init_std);
    log_info("initialised ", config.model.num_parameters(), " parameters (seed ",
             config.train.seed, ", std ", config.train.init_std, ")");
  } else {
    require_same_architecture(read_model_file_config(weights), config.model, weights);
    const h5::File file(weights, h5::Mode::read);
    load_params(file, "params", model->params());
    log_info("loaded ", config.model.num_parameters(), " parameters from ", weights);
  }
  return model;
}

void make_run_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  RT_REQUIRE(!ec, "cannot create run.dir '", dir, "': ", ec.message());
}

}  // namespace ratrain
