// `ratrain eval [config.ini] model.weights=FILE [section.key=value ...]`: validation loss
// of a model file on data.val in each of eval.modes (sparse = the config's model.dilation
// / window / initial), printed and appended as one JSON line to <run.dir>/eval.jsonl.
#include <cstdio>

#include "io/metrics.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"
#include "launch/evaluation.hpp"
#include "launch/run_setup.hpp"
#include "runtime/log.hpp"

namespace ratrain {

int eval_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse("eval", args, {});
  RT_REQUIRE(cl.positional.size() <= 1, "ratrain eval takes at most one config file, got ",
             cl.positional.size(), " positional arguments");
  RunConfig config = load_run_config(cl.positional.empty() ? "" : cl.positional[0], cl.overrides);
  RT_REQUIRE(!config.train.weights.empty(), "ratrain eval needs model.weights=<model file>");
  RT_REQUIRE(!config.data.val_path.empty(), "ratrain eval needs data.val=<token file>");
  const RunData data = open_run_data(config, /*need_train=*/false);
  std::unique_ptr<RatLM> model = build_model(config);

  const EvalShape shape{config.eval.batches, config.train.batch_size, config.train.seq_len,
                        data.eos_id};
  const Sparsity& rule = config.model.sparse_rules.front();
  JsonLine line;
  line.add("event", "eval").add("weights", config.train.weights)
      .add("dilation", static_cast<std::int64_t>(rule.dilation))
      .add("window", static_cast<std::int64_t>(rule.window))
      .add("initial", static_cast<std::int64_t>(rule.initial))
      .add("seq_len", config.train.seq_len);
  for (AttentionMode mode : config.eval.modes) {
    const double loss = validation_loss(*model, *data.val, shape, mode);
    line.add("val_loss_" + attention_mode_name(mode), loss);
    log_info("validation loss (", attention_mode_name(mode), "): ", loss);
  }
  make_run_dir(config.run_dir);
  MetricsWriter(config.run_dir + "/eval.jsonl").write(line);
  std::printf("%s\n", line.str().c_str());
  return 0;
}

}  // namespace ratrain
