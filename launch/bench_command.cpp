// `ratrain bench [config.ini] [section.key=value ...] [--steps N] [--warmup N]`: times
// training iterations of the configured model and schedule on synthetic tokens (no data
// files), on the configured device, and reports tokens/s, model TFLOP/s and MFU.
//
// One iteration is what `train` runs per global batch: for the joint schedule a sparse
// forward/backward + AdamW step and then a dense one, on the same batch (tokens counted
// once, FLOPs of both passes counted, model/flops.hpp). Each iteration ends with the
// loss and gradient norm on the host, so host timing of whole iterations is exact.
// MFU's denominator is measured in the same process: the rate of an 8192^3 GEMM in the
// model dtype through the same cuBLASLt path the model uses (on the CPU: the same GEMM
// at 2048^3 through the CPU backend).
// With --gaps the GPU's own timestamps of every kernel, copy and memset of the timed
// iterations (CUPTI, runtime/gpu_activity.hpp) give the fraction of the time the GPU was
// busy and its idle gaps of 10 us or more: the launch gaps of the step (world rank 0's
// GPU under mpirun).
// Output: a table on stderr and one JSON record per run on stdout (benchmarks/README.md).
//
// Under mpirun it times the configured parallel layout (parallel.tp, .sp, .pp, .dp) on
// one GPU per rank: the batch is the global one, as in `train`; every rank measures
// its own GEMM rate and world rank 0 reports per-GPU MFU (model FLOPs / ranks / time /
// its GEMM rate) and the largest peak memory of any rank.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "io/metrics.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"
#include "launch/gemm_rate.hpp"
#include "launch/run_setup.hpp"
#include "model/flops.hpp"
#include "model/trainer.hpp"
#include "parallel/mpi_group.hpp"
#include "parallel/parallel_context.hpp"
#include "runtime/allocator.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/gpu_activity.hpp"
#include "runtime/log.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// (B, T) ids uniform in [0, V) and labels = the next token (the last row's last label is
// a fresh draw): a batch whose loss starts near ln V like real text.
struct SyntheticBatch {
  Tensor ids, labels;
};
SyntheticBatch synthetic_batch(std::int64_t batch, std::int64_t seq, std::int64_t vocab) {
  const CounterRng rng(7, "bench tokens");
  Tensor rows = Tensor::empty({batch, seq + 1}, DType::i32);
  for (std::int64_t i = 0; i < rows.numel(); ++i)
    rows.data<std::int32_t>()[i] = static_cast<std::int32_t>(
        rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(vocab)));
  SyntheticBatch out{Tensor::empty({batch, seq}, DType::i32), Tensor::empty({batch, seq}, DType::i32)};
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < seq; ++t) {
      out.ids.data<std::int32_t>()[b * seq + t] = rows.data<std::int32_t>()[b * (seq + 1) + t];
      out.labels.data<std::int32_t>()[b * seq + t] = rows.data<std::int32_t>()[b * (seq + 1) + t + 1];
    }
  return out;
}

// Idle stretches of the GPU this long or longer count as gaps: a kernel launch costs the
// host ~3-5 us, so shorter ones are the launch queue's normal breathing.
constexpr std::uint64_t kReportedGapNs = 10'000;

// "bench: GPU busy 97.1 % of the timed iterations; per iteration 12.0 idle gaps >= 10 us,
// 1.83 ms in all (largest gap 412 us)".
std::string format_gaps(const IdleGaps& gaps, double per_iteration) {
  char text[200];
  std::snprintf(text, sizeof text,
                "bench: GPU busy %.1f %% of the timed iterations; per iteration %.1f idle gaps "
                ">= %.0f us, %.2f ms in all (largest gap %.0f us)",
                100.0 * gaps.busy_fraction(),
                static_cast<double>(gaps.count) * per_iteration, kReportedGapNs / 1e3,
                static_cast<double>(gaps.total_ns) / 1e6 * per_iteration,
                static_cast<double>(gaps.largest_ns) / 1e3);
  return text;
}

// The heaviest kernels of the timed iterations, one line each: "  31.20 ms  25.1 %  96 calls
// attention_backward_wgmma<...>" (time and calls per iteration, share of the busy time).
constexpr std::size_t kListedKernels = 20;
void log_kernel_times(const KernelTimes& times, int steps, std::uint64_t busy_ns) {
  const std::vector<KernelTime> sorted = times.heaviest_first();
  log_info("bench: GPU time per iteration by kernel (the ", std::min(sorted.size(), kListedKernels),
           " largest of ", sorted.size(), " names; share of the busy time):");
  for (std::size_t i = 0; i < std::min(sorted.size(), kListedKernels); ++i) {
    const KernelTime& k = sorted[i];
    char line[96];
    std::snprintf(line, sizeof line, "  %8.3f ms %5.1f %% %6.1f calls  ",
                  static_cast<double>(k.total_ns) / 1e6 / steps,
                  busy_ns ? 100.0 * static_cast<double>(k.total_ns) / static_cast<double>(busy_ns) : 0.0,
                  static_cast<double>(k.calls) / steps);
    log_info(line, k.name);
  }
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse(
      "bench", args,
      {{"steps", true, "timed iterations (default 10)"},
       {"warmup", true, "untimed iterations first (default 3)"},
       {"gaps", false, "record the GPU's busy time and idle gaps (CUPTI)"}});
  RT_REQUIRE(cl.positional.size() <= 1, "ratrain bench takes at most one config file, got ",
             cl.positional.size(), " positional arguments");
  RunConfig config = load_run_config(cl.positional.empty() ? "" : cl.positional[0], cl.overrides);
  RT_REQUIRE(config.model.vocab_size > 0, "ratrain bench draws synthetic tokens, so it needs "
             "model.vocab_size > 0 (got ", config.model.vocab_size, ")");
  validate_run_config(config);
  const auto steps = static_cast<int>(cl.real_flag_or("steps", 10));
  const auto warmup = static_cast<int>(cl.real_flag_or("warmup", 3));
  RT_REQUIRE(steps >= 1 && warmup >= 0, "--steps must be >= 1 and --warmup >= 0");
  const bool record_gaps = cl.has("gaps");
  if (record_gaps) {
    RT_REQUIRE(config.train.device == Device::cuda,
               "ratrain bench --gaps records the GPU: set train.device=cuda");
    RT_REQUIRE(cuda_available(), "ratrain bench --gaps: no CUDA device is visible");
    RT_REQUIRE(GpuActivity::available(), "ratrain bench --gaps needs CUPTI, which this build "
               "lacks (cupti.h and libcupti beside the CUDA toolkit)");
  }

  const Group world = group_from_mpi(MPI_COMM_WORLD);
  const ParallelContext ctx = ParallelContext::create(world, config.parallel, config.train.device);
  std::unique_ptr<RatLM> model = build_model(config, ctx);
  AdamW optimizer(model->params(), config.optim, ctx);
  Trainer trainer(*model, optimizer, config.lr, config.train.schedule, config.train.micro_batch);
  const SyntheticBatch batch =
      synthetic_batch(config.train.batch_size, config.train.seq_len, config.model.vocab_size);

  const Device device = config.train.device;
  // 8192^3 on a GPU; 2048^3 on the CPU (a few seconds with one BLAS thread).
  const double peak = device == Device::cuda ? measured_gemm_rate(config.train.dtype, device, 8192, 20)
                                             : measured_gemm_rate(config.train.dtype, device, 2048, 3);
  double flops_per_token = 0;
  for (AttentionMode mode : schedule_modes(config.train.schedule))
    flops_per_token += training_flops_per_token(config.model, config.train.seq_len, mode);
  const std::int64_t tokens = config.train.batch_size * config.train.seq_len;
  log_info("bench: ", config.model.num_parameters(), " parameters, layout ",
           to_string(config.parallel), ", schedule ",
           schedule_name(config.train.schedule), ", ", config.train.batch_size, " x ",
           config.train.seq_len, " tokens per iteration (micro-batch ", config.train.micro_batch,
           ", recompute ", config.train.recompute ? "on" : "off", "), ", device_name(device), " ",
           dtype_name(config.train.dtype), "; ", warmup, " warm-up + ", steps, " timed iterations");

  std::optional<GpuActivity> activity;
  std::vector<double> times;
  double last_loss = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    if (record_gaps && i == warmup) {
      synchronize_device();
      activity.emplace();
    }
    const auto start = Clock::now();
    const IterationResult r = trainer.step(batch.ids, batch.labels);
    const double s = seconds_since(start);
    last_loss = r.steps.back().loss;
    if (i >= warmup) times.push_back(s);
    log_info("  iteration ", i + 1, "/", warmup + steps, i < warmup ? " (warm-up)" : "", ": ",
             s * 1e3, " ms, loss ", last_loss);
  }
  std::optional<IdleGaps> gaps;
  KernelTimes kernel_times;
  if (activity) {
    synchronize_device();
    const GpuActivity::Recording recording = activity->collect();
    if (recording.dropped > 0)
      log_warn("bench --gaps: CUPTI dropped ", recording.dropped, " records: the gaps overstate");
    gaps = idle_gaps(recording.work, recording.window, kReportedGapNs);
    kernel_times = recording.by_name;
  }
  const double step_s = median(times);
  const double flops = flops_per_token * static_cast<double>(tokens);
  const int gpus = ctx.world_size;
  const double mfu = flops / gpus / step_s / peak;
  // The largest rank's, in bytes (exact in a double below 2^53).
  Tensor peak_memory = Tensor::empty({gpus}, DType::f64);
  peak_memory.zero();
  peak_memory.data<double>()[ctx.world_rank] = static_cast<double>(memory_stats(device).peak_bytes);
  world.all_reduce_sum(peak_memory);
  std::int64_t peak_bytes = 0;
  for (int r = 0; r < gpus; ++r)
    peak_bytes = std::max(peak_bytes, static_cast<std::int64_t>(peak_memory.item(r)));
  if (ctx.world_rank != 0) return 0;
  log_info("bench: median ", step_s * 1e3, " ms per iteration, ", static_cast<double>(tokens) / step_s,
           " tokens/s, ", flops / step_s / 1e12, " model TFLOP/s; measured GEMM ", peak / 1e12,
           " TFLOP/s; MFU ", mfu * 100, " %; peak memory ", static_cast<double>(peak_bytes) / (1 << 30),
           " GiB (largest rank)");

  if (gaps) {
    const double per_iteration = 1.0 / steps;
    log_info(format_gaps(*gaps, per_iteration));
    log_kernel_times(kernel_times, steps, gaps->busy_ns);
  }

  JsonLine record;
  record.add("part", "d")
      .add("case", "step " + schedule_name(config.train.schedule) + " T=" +
                       std::to_string(config.train.seq_len) + " B=" + std::to_string(config.train.batch_size))
      .add("side", "ours")
      .add("layout", to_string(config.parallel))
      .add("gpus", static_cast<std::int64_t>(gpus))
      .add("impl", "ratrain")
      .add("ms", step_s * 1e3)
      .add("tokens_per_s", static_cast<double>(tokens) / step_s)
      .add("flops", flops)
      .add("tflops", flops / step_s / 1e12)
      .add("gemm_tflops", peak / 1e12)
      .add("mfu", mfu)
      .add("peak_bytes", peak_bytes)
      .add("loss", last_loss);
  if (gaps) {
    record.add("gpu_busy", gaps->busy_fraction())
        .add("gaps_per_iteration", static_cast<double>(gaps->count) / steps)
        .add("gap_ms_per_iteration", static_cast<double>(gaps->total_ns) / 1e6 / steps)
        .add("largest_gap_us", static_cast<double>(gaps->largest_ns) / 1e3);
  }
  std::printf("%s\n", record.str().c_str());
  return 0;
}

}  // namespace ratrain
