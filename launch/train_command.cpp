// `ratrain train [config.ini] [section.key=value ...]`: trains under the configured
// schedule, printing a progress line every run.log_every iterations and appending one
// JSON line per iteration (and per validation pass) to <run.dir>/metrics.jsonl; writes
// the resolved config to <run.dir>/config.ini and the weights to <run.dir>/model.h5.
// Resumes from a checkpoint (checkpoint.resume, io/checkpoint_resume.hpp) and saves them
// every checkpoint.every iterations and at the end (io/checkpoint_saver.hpp); a launch
// may end early at train.stop_at, and a resumed one continues exactly where it stopped.
// SIGUSR1 or SIGTERM (launch/stop_signals.hpp) stops it at the next step boundary with a
// checkpoint and exit status kExitRequeue, for the Slurm template to requeue. A start-up
// phase, an iteration or a final phase running past train.hang_timeout_s ends the job
// with kExitHang (launch/step_watchdog.hpp) instead of letting a hung rank stall the
// others.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "io/batch.hpp"
#include "io/checkpoint_resume.hpp"
#include "io/checkpoint_saver.hpp"
#include "io/metrics.hpp"
#include "io/model_file.hpp"
#include "io/sampler.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"
#include "launch/evaluation.hpp"
#include "launch/gemm_rate.hpp"
#include "launch/run_setup.hpp"
#include "launch/step_watchdog.hpp"
#include "launch/stop_signals.hpp"
#include "model/flops.hpp"
#include "parallel/communication_clock.hpp"
#include "parallel/mpi_group.hpp"
#include "parallel/parallel_context.hpp"
#include "runtime/allocator.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

const std::vector<FlagSpec> kTrainFlags = {
    {"help-config", false, "list every config key with its default and meaning"}};

void print_config_help() {
  std::printf("%-22s %-9s %-14s %s\n", "key", "kind", "default", "meaning");
  for (const ConfigKey& k : run_config_schema())
    std::printf("%-22s %-9s %-14s %s\n", k.name.c_str(), std::string(value_kind_name(k.kind)).c_str(),
                k.default_value.empty() ? "\"\"" : k.default_value.c_str(), k.help.c_str());
}

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string duration(double seconds) {
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  RT_REQUIRE(out.good(), "cannot write '", path, "'");
}

class ValidationPass {
 public:
  ValidationPass(const RunConfig& c, const RunData& d)
      : data_(d.val ? &*d.val : nullptr),
        shape_{c.eval.batches, c.train.batch_size, c.train.seq_len, d.eos_id},
        modes_(schedule_modes(c.train.schedule)) {}
  bool enabled() const { return data_ != nullptr; }

  // Collective over the model's dp and sp groups; `metrics` is null on ranks that do not
  // write them.
  void run(RatLM& model, std::int64_t iter, MetricsWriter* metrics) const {
    JsonLine line;
    line.add("event", "val").add("iter", iter);
    std::string progress = "validation";
    for (AttentionMode mode : modes_) {
      const double loss = validation_loss(model, *data_, shape_, mode);
      line.add("val_loss_" + attention_mode_name(mode), loss);
      progress += format("  %s %.4f", attention_mode_name(mode).c_str(), loss);
    }
    if (metrics) metrics->write(line);
    log_info(progress, "  (iter ", iter, ")");
  }

 private:
  const TokenDataset* data_;
  EvalShape shape_;
  std::vector<AttentionMode> modes_;
};

}  // namespace

int train_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse("train", args, kTrainFlags);
  if (cl.has("help-config")) {
    print_config_help();
    return 0;
  }
  RT_REQUIRE(cl.positional.size() <= 1, "ratrain train takes at most one config file, got ",
             cl.positional.size(), " positional arguments");
  RunConfig config = load_run_config(cl.positional.empty() ? "" : cl.positional[0], cl.overrides);
  const RunData data = open_run_data(config, /*need_train=*/true);
  // Every rank reads the data and the whole batch, and works on its block of it.
  const Group world = group_from_mpi(MPI_COMM_WORLD);
  StepWatchdog watchdog(config.train.hang_timeout_s, world.rank());
  watchdog.arm(0, "communicator set-up");  // NCCL's waits for every rank of each group
  const ParallelContext ctx = ParallelContext::create(world, config.parallel, config.train.device);
  watchdog.arm(0, "model set-up");
  if (ctx.world_size > 1) {
    std::string split;  // the sequence split of dense passes (dilated ones are contiguous)
    if (config.parallel.sp > 1)
      split = " (sp split: " + std::string(sequence_split_name(config.parallel.sp_split)) +
              " for dense passes)";
    log_info("parallel layout ", to_string(config.parallel), split, " over ", ctx.world_size,
             " ranks");
  }

  // World rank 0 writes the run folder's files.
  std::optional<MetricsWriter> metrics;
  if (ctx.world_rank == 0) {
    make_run_dir(config.run_dir);
    write_text(config.run_dir + "/config.ini", config.raw.to_ini());
    metrics.emplace(config.run_dir + "/metrics.jsonl");
  }
  MetricsWriter* const metrics_out = metrics ? &*metrics : nullptr;

  // MFU's denominator, this rank's measured GEMM rate in the model's dtype: 8192^3 on a
  // GPU (about 0.1 s; measured before the model exists, its 400 MB handed back to the
  // driver after), 512^3 on the CPU (milliseconds; a rough figure there).
  const bool gpu = config.train.device == Device::cuda;
  const double gemm_rate = measured_gemm_rate(config.train.dtype, config.train.device,
                                              gpu ? 8192 : 512, gpu ? 10 : 3);
  if (gpu) release_cached_device_memory();

  std::unique_ptr<RatLM> model = build_model(config, ctx);
  AdamW optimizer(model->params(), config.optim, ctx);
  Trainer trainer(*model, optimizer, config.lr, config.train.schedule, config.train.micro_batch);
  const ValidationPass validation(config, data);

  const TokenDataset& train = *data.train;
  const std::int64_t samples = num_samples(train, config.train.seq_len);
  const SampleOrder order(samples, config.train.seed, /*shuffle=*/true);
  std::int64_t data_cursor = 0;  // global sample index of the next batch
  watchdog.arm(0, "checkpoint resume");
  const std::optional<CheckpointMeta> resumed = resume_from_checkpoint(
      config.checkpoint, world, ctx, model->params(), optimizer);
  if (resumed) {
    trainer.set_iter(resumed->iteration);
    data_cursor = resumed->data_cursor;
    if (resumed->data_samples != samples || resumed->seed != config.train.seed)
      log_warn("the checkpoint's data order (", resumed->data_samples, " samples, seed ",
               resumed->seed, ") is not this run's (", samples, " samples, seed ",
               config.train.seed, "): the batches will differ from an uninterrupted run");
  }
  CheckpointSaver checkpoints(config, ctx, world, samples, model->params(), optimizer);
  const std::int64_t first = trainer.iter();
  const std::int64_t last = config.train.stop_at > 0 ? config.train.stop_at : config.train.iters;
  const auto modes = schedule_modes(config.train.schedule);
  double flops_per_token = 0;
  for (AttentionMode mode : modes)
    flops_per_token += training_flops_per_token(config.model, config.train.seq_len, mode);
  const std::int64_t tokens_per_iter = config.train.batch_size * config.train.seq_len;

  log_info("training ", config.model.num_parameters(), " parameters, schedule ",
           schedule_name(config.train.schedule), ", ", config.train.iters, " iterations of ",
           config.train.batch_size, " x ", config.train.seq_len, " tokens (",
           samples, " samples per epoch); run folder ", config.run_dir,
           format("; MFU against a measured GEMM rate of %.3g TFLOP/s per rank", gemm_rate / 1e12));

  // A pass before the first step anchors the validation curve at the initial loss.
  watchdog.arm(0, "initial validation");
  if (validation.enabled() && config.eval.every > 0 && !resumed)
    validation.run(*model, 0, metrics_out);
  const StopSignals stop_signals;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t it = first; it < last; ++it) {
    watchdog.arm(it + 1);
    const auto t0 = std::chrono::steady_clock::now();
    const double comm0 = communication_seconds();
    const Batch batch = make_batch(train, order, data_cursor, config.train.batch_size,
                                   config.train.seq_len, data.eos_id);
    data_cursor += config.train.batch_size;
    const IterationResult r = trainer.step(batch.ids, batch.labels);
    const auto t1 = std::chrono::steady_clock::now();
    const double step_s = std::chrono::duration<double>(t1 - t0).count();
    const double comm_s = communication_seconds() - comm0;
    const double elapsed = std::chrono::duration<double>(t1 - start).count();
    const double model_flops_per_s = flops_per_token * static_cast<double>(tokens_per_iter) / step_s;

    JsonLine line;
    line.add("event", "train").add("iter", it).add("lr", r.lr);
    for (const ModeStepResult& s : r.steps) {
      line.add("loss_" + attention_mode_name(s.mode), s.loss);
      line.add("grad_norm_" + attention_mode_name(s.mode), s.grad_norm);
    }
    line.add("tokens", (it + 1) * tokens_per_iter)
        .add("tokens_per_s", static_cast<double>(tokens_per_iter) / step_s)
        .add("model_flops_per_s", model_flops_per_s)
        .add("mfu", model_flops_per_s / ctx.world_size / gemm_rate)
        .add("step_s", step_s)
        .add("compute_s", step_s - comm_s)  // world rank 0's; see parallel/communication_clock.hpp
        .add("comm_s", comm_s)
        .add("peak_bytes", memory_stats(config.train.device).peak_bytes)
        .add("elapsed_s", elapsed);
    if (metrics_out) metrics_out->write(line);

    if (it % config.log_every == 0 || it + 1 == last) {
      std::string losses;
      for (const ModeStepResult& s : r.steps)
        losses += format("  loss(%s) %.4f", attention_mode_name(s.mode).c_str(), s.loss);
      const double eta = elapsed / static_cast<double>(it + 1 - first) *
                         static_cast<double>(last - it - 1);
      log_info(format("iter %lld/%lld  lr %.2e", static_cast<long long>(it + 1),
                      static_cast<long long>(config.train.iters), r.lr),
               losses,
               format("  gnorm %.3f  %.0f tok/s  eta %s", r.steps.back().grad_norm,
                      static_cast<double>(tokens_per_iter) / step_s, duration(eta).c_str()));
    }
    if (validation.enabled() && config.eval.every > 0 && (it + 1) % config.eval.every == 0 &&
        it + 1 != last)
      validation.run(*model, it + 1, metrics_out);
    const auto save_checkpoint = [&] {
      checkpoints.save({.iteration = it + 1, .data_cursor = data_cursor});
    };
    const bool saved = checkpoints.due(it + 1, last);
    if (saved)
      save_checkpoint();
    else
      checkpoints.poll();
    if (const int signal = stop_signals.agreed(world); signal != 0 && it + 1 < last) {
      log_info("received ", signal == SIGTERM ? "SIGTERM" : "SIGUSR1", ": stopping after "
               "iteration ", it + 1, " with a checkpoint; exit status ", kExitRequeue,
               " asks for a requeue");
      watchdog.arm(it + 1, "checkpoint on a stop signal");  // a fresh clock for the save
      if (!saved) save_checkpoint();
      checkpoints.finish();
      // Every rank leaves only after world rank 0 has committed: under srun
      // --kill-on-bad-exit the first task to exit ends the others, and an MPI whose
      // finalize does not wait could otherwise cut the commit short.
      world.barrier();
      return kExitRequeue;
    }
    watchdog.disarm();
  }
  watchdog.arm(last, "final validation");
  if (validation.enabled()) validation.run(*model, last, metrics_out);
  watchdog.arm(last, "checkpoint finish");
  checkpoints.finish();

  const std::string model_path = config.run_dir + "/model.h5";
  watchdog.arm(last, "model.h5 save");
  save_model_file(model_path, config.model, model->params(), ctx);
  watchdog.disarm();
  log_info("done: weights in ", model_path, ", metrics in ", config.run_dir, "/metrics.jsonl");
  return 0;
}

}  // namespace ratrain
