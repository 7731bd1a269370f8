#include "io/run_config.hpp"

#include <algorithm>
#include <cmath>

namespace ratrain {
namespace {

std::vector<AttentionMode> parse_attention_modes(const std::string& text, const char* key) {
  std::vector<AttentionMode> modes;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    const std::string name = text.substr(begin, end - begin);
    RT_REQUIRE(name == "dense" || name == "sparse", key, ": unknown attention mode '", name,
               "'; valid: dense, sparse (comma-separated)");
    modes.push_back(name == "dense" ? AttentionMode::dense : AttentionMode::sparse);
    begin = end + 1;
  }
  return modes;
}

// A `parallel.*` rank count, range-checked (rank_layout.hpp) before it narrows to int.
int axis_size(const Config& r, const char* key) {
  const std::int64_t size = r.get_int(key);
  RT_REQUIRE(size >= 1 && size <= kMaxAxisSize, key, " must be in [1, ", kMaxAxisSize,
             "] (got ", size, ")");
  return static_cast<int>(size);
}

}  // namespace

const std::vector<ConfigKey>& run_config_schema() {
  using K = ValueKind;
  static const std::vector<ConfigKey> schema = {
      {"model.vocab_size", K::integer, "0", "vocabulary size; 0 = from the training data"},
      {"model.d_model", K::integer, "128", "model width d"},
      {"model.num_heads", K::integer, "4", "attention heads (d / heads = head dim, even)"},
      {"model.num_layers", K::integer, "4", "layers"},
      {"model.ffn_mult", K::integer, "4", "FFN width = ffn_mult * d"},
      {"model.rope_base", K::real, "10000", "RoPE base"},
      {"model.dilation", K::int_list, "64", "sparse-mode D, one value or one per layer (-1 = local only)"},
      {"model.window", K::int_list, "0", "sparse-mode local window W, one or per layer"},
      {"model.initial", K::int_list, "0", "sparse-mode initial tokens P, one or per layer"},
      {"model.weights", K::string, "", "model file (HDF5) to start from (train, e.g. adaptation) or to evaluate (eval); empty = fresh init"},
      {"train.schedule", K::string, "joint", "joint (sparse step + dense step per batch), dense, or sparse (adaptation)"},
      {"train.seq_len", K::integer, "256", "tokens per sample T"},
      {"train.batch_size", K::integer, "8", "samples per global batch"},
      {"train.micro_batch", K::integer, "0", "samples per forward/backward (0 = whole batch)"},
      {"train.iters", K::integer, "100", "iterations (global batches)"},
      {"train.device", K::string, "cpu", "where the model trains: cpu or cuda (one GPU)"},
      {"train.dtype", K::string, "f32", "compute type: f32 or f64 on the cpu; bf16 (fp32 master weights) or f32 on cuda"},
      {"train.seed", K::integer, "1234", "seed of the initialisation and the data order"},
      {"train.init_std", K::real, "0.02", "std of the normal initialisation"},
      {"train.recompute", K::boolean, "false", "recompute each layer's activations in backward"},
      {"optim.lr", K::real, "8e-4", "peak learning rate"},
      {"optim.min_lr", K::real, "1e-6", "cosine floor eta_min"},
      {"optim.warmup_frac", K::real, "0.05", "fraction of iterations of linear warmup"},
      {"optim.weight_decay", K::real, "0.1", "AdamW weight decay"},
      {"optim.beta1", K::real, "0.9", "AdamW beta1"},
      {"optim.beta2", K::real, "0.95", "AdamW beta2"},
      {"optim.eps", K::real, "1e-8", "AdamW epsilon"},
      {"optim.clip", K::real, "1.0", "global gradient-norm clip (<= 0 disables)"},
      {"optim.bucket_mb", K::real, "25", "gradient bucket of the data-parallel reduce-scatter, MiB (overlaps backward)"},
      {"data.train", K::string, "", "training tokens: HDF5 token file or flat uint16 .bin"},
      {"data.val", K::string, "", "validation tokens (same formats); empty = none"},
      {"data.eos_id", K::integer, "-1", "EOS id for label masking; -1 = from the token file"},
      {"data.bin_vocab_size", K::integer, "32000", "vocabulary of .bin token streams"},
      {"eval.every", K::integer, "0", "iterations between validation passes (0 = end only)"},
      {"eval.batches", K::integer, "8", "validation batches per pass"},
      {"eval.modes", K::string, "dense,sparse", "attention modes `ratrain eval` reports"},
      {"parallel.tp", K::integer, "1", "tensor-parallel ranks"},
      {"parallel.sp", K::integer, "1", "sequence-parallel ranks"},
      {"parallel.pp", K::integer, "1", "pipeline stages"},
      {"parallel.dp", K::integer, "1", "data-parallel ranks"},
      {"parallel.sp_split", K::string, "zigzag", "how sp cuts a sample in a dense pass: zigzag (2 sp chunks, rank r holds r and 2 sp - 1 - r: balanced causal work; train.seq_len divisible by 2 sp) or contiguous (one chunk per rank); passes with dilated or local layers always split contiguously"},
      {"run.dir", K::string, "runs/default", "output folder: metrics.jsonl, model.h5, config.ini"},
      {"run.log_every", K::integer, "1", "iterations between progress lines"},
      {"train.stop_at", K::integer, "0", "end this launch after that many iterations (the schedule still spans train.iters; resume continues); 0 = train.iters"},
      {"train.hang_timeout_s", K::integer, "1800", "seconds a start-up phase (communicator set-up, model set-up, checkpoint resume, initial validation), an iteration or a final phase (validation, checkpoint commit, model save) may run before its rank ends the job with exit status 70 (a hung peer would stall every rank); 0 = off"},
      {"checkpoint.dir", K::string, "", "checkpoint folder; empty = <run.dir>/checkpoints"},
      {"checkpoint.every", K::integer, "0", "iterations between checkpoints, plus one at the end of a launch (0 = none)"},
      {"checkpoint.keep", K::integer, "3", "complete checkpoints kept (the newest; older ones are deleted)"},
      {"checkpoint.resume", K::string, "auto", "auto (the latest checkpoint if there is one), none, or a checkpoint folder"},
      {"checkpoint.fallback", K::boolean, "false", "with resume = auto: a checkpoint that fails verification falls back to the one before"},
  };
  return schema;
}

RunConfig load_run_config(const std::string& ini_path, const std::vector<std::string>& overrides) {
  RunConfig c;
  c.raw = Config::load(ini_path, overrides, run_config_schema());
  const Config& r = c.raw;

  c.model.vocab_size = r.get_int("model.vocab_size");
  c.model.d_model = r.get_int("model.d_model");
  c.model.num_heads = r.get_int("model.num_heads");
  c.model.num_layers = r.get_int("model.num_layers");
  c.model.ffn_mult = r.get_int("model.ffn_mult");
  c.model.rope_base = r.get_real("model.rope_base");
  RT_REQUIRE(c.model.num_layers > 0, "model.num_layers must be positive (got ",
             c.model.num_layers, ")");
  c.model.sparse_rules = make_layer_rules(c.model.num_layers, r.get_int_list("model.dilation"),
                                          r.get_int_list("model.window"),
                                          r.get_int_list("model.initial"));

  c.train = {.schedule = parse_schedule(r.get_string("train.schedule")),
             .seq_len = r.get_int("train.seq_len"),
             .batch_size = r.get_int("train.batch_size"),
             .micro_batch = r.get_int("train.micro_batch"),
             .iters = r.get_int("train.iters"),
             .device = parse_device(r.get_string("train.device")),
             .dtype = parse_dtype(r.get_string("train.dtype")),
             .seed = static_cast<std::uint64_t>(r.get_int("train.seed")),
             .init_std = r.get_real("train.init_std"),
             .recompute = r.get_bool("train.recompute"),
             .weights = r.get_string("model.weights")};
  RT_REQUIRE(c.train.seq_len > 0, "train.seq_len must be positive (got ", c.train.seq_len, ")");
  RT_REQUIRE(c.train.batch_size > 0, "train.batch_size must be positive (got ",
             c.train.batch_size, ")");
  RT_REQUIRE(c.train.iters > 0, "train.iters must be positive (got ", c.train.iters, ")");
  if (c.train.device == Device::cpu)
    RT_REQUIRE(c.train.dtype == DType::f32 || c.train.dtype == DType::f64,
               "train.dtype must be f32 or f64 with train.device = cpu (got ",
               r.get_string("train.dtype"), ")");
  else
    RT_REQUIRE(c.train.dtype == DType::bf16 || c.train.dtype == DType::f32,
               "train.dtype must be bf16 or f32 with train.device = cuda (got ",
               r.get_string("train.dtype"), ")");
  RT_REQUIRE(c.train.micro_batch >= 0 &&
                 (c.train.micro_batch == 0 || c.train.batch_size % c.train.micro_batch == 0),
             "train.batch_size (", c.train.batch_size, ") must be divisible by train.micro_batch (",
             c.train.micro_batch, ")");

  const double warmup_frac = r.get_real("optim.warmup_frac");
  RT_REQUIRE(warmup_frac >= 0 && warmup_frac <= 1, "optim.warmup_frac must be in [0, 1] (got ",
             warmup_frac, ")");
  c.lr = {.base_lr = r.get_real("optim.lr"),
          .eta_min = r.get_real("optim.min_lr"),
          .warmup_iters = static_cast<std::int64_t>(std::ceil(warmup_frac * c.train.iters)),
          .total_iters = c.train.iters};
  c.lr.validate();
  c.optim = {.beta1 = r.get_real("optim.beta1"),
             .beta2 = r.get_real("optim.beta2"),
             .eps = r.get_real("optim.eps"),
             .weight_decay = r.get_real("optim.weight_decay"),
             .clip_norm = r.get_real("optim.clip")};
  RT_REQUIRE(c.optim.beta1 >= 0 && c.optim.beta1 < 1 && c.optim.beta2 >= 0 && c.optim.beta2 < 1,
             "optim.beta1 and optim.beta2 must be in [0, 1)");
  // 1 GiB at most: larger buckets only delay the first reduce-scatter of a step.
  const double bucket_mb = r.get_real("optim.bucket_mb");
  RT_REQUIRE(bucket_mb >= 0.001 && bucket_mb <= 1024, "optim.bucket_mb must be in [0.001, 1024] "
             "(got ", bucket_mb, ")");
  c.optim.bucket_bytes = static_cast<std::int64_t>(bucket_mb * (1 << 20));

  c.data = {.train_path = r.get_string("data.train"),
            .val_path = r.get_string("data.val"),
            .eos_id = static_cast<std::int32_t>(r.get_int("data.eos_id")),
            .bin_vocab_size = r.get_int("data.bin_vocab_size")};
  c.eval = {.every = r.get_int("eval.every"),
            .batches = r.get_int("eval.batches"),
            .modes = parse_attention_modes(r.get_string("eval.modes"), "eval.modes")};
  RT_REQUIRE(c.eval.every >= 0 && c.eval.batches > 0,
             "eval.every must be >= 0 and eval.batches > 0");
  c.parallel = {.tp = axis_size(r, "parallel.tp"), .sp = axis_size(r, "parallel.sp"),
                .pp = axis_size(r, "parallel.pp"), .dp = axis_size(r, "parallel.dp"),
                .sp_split = parse_sequence_split(r.get_string("parallel.sp_split"),
                                                 "parallel.sp_split")};
  c.run_dir = r.get_string("run.dir");
  c.log_every = r.get_int("run.log_every");
  RT_REQUIRE(c.log_every > 0, "run.log_every must be positive (got ", c.log_every, ")");
  c.train.stop_at = r.get_int("train.stop_at");
  RT_REQUIRE(c.train.stop_at >= 0 && c.train.stop_at <= c.train.iters, "train.stop_at must be in "
             "[0, train.iters = ", c.train.iters, "] (got ", c.train.stop_at, ")");
  // A year at most: a deadline further out could overflow steady_clock's nanoseconds.
  constexpr std::int64_t kMaxHangTimeout = 365LL * 24 * 3600;
  c.train.hang_timeout_s = r.get_int("train.hang_timeout_s");
  RT_REQUIRE(c.train.hang_timeout_s >= 0 && c.train.hang_timeout_s <= kMaxHangTimeout,
             "train.hang_timeout_s must be in [0, ", kMaxHangTimeout, "] seconds (0 = no hang "
             "watchdog; got ", c.train.hang_timeout_s, ")");
  const std::string& checkpoint_dir = r.get_string("checkpoint.dir");
  c.checkpoint = {.dir = checkpoint_dir.empty() ? c.run_dir + "/checkpoints" : checkpoint_dir,
                  .every = r.get_int("checkpoint.every"),
                  .keep = r.get_int("checkpoint.keep"),
                  .resume = r.get_string("checkpoint.resume"),
                  .fallback = r.get_bool("checkpoint.fallback")};
  RT_REQUIRE(c.checkpoint.every >= 0, "checkpoint.every must be >= 0 (got ", c.checkpoint.every,
             ")");
  RT_REQUIRE(c.checkpoint.keep >= 1, "checkpoint.keep must be >= 1 (got ", c.checkpoint.keep, ")");
  RT_REQUIRE(!c.checkpoint.resume.empty(), "checkpoint.resume must be auto, none or a folder");
  return c;
}

void validate_run_config(const RunConfig& c) {
  c.model.validate();
  const ParallelSizes& p = c.parallel;
  RT_REQUIRE(c.model.num_heads % p.tp == 0, "model.num_heads (", c.model.num_heads,
             ") must be divisible by parallel.tp (", p.tp, ")");
  RT_REQUIRE(c.model.num_layers % p.pp == 0, "model.num_layers (", c.model.num_layers,
             ") must be divisible by parallel.pp (", p.pp, ")");
  // Sequence parallelism splits each sample into sp contiguous chunks, or into 2 * sp
  // zigzag chunks (a dense pass under parallel.sp_split = zigzag).
  if (p.sp_split == SequenceSplit::zigzag)
    RT_REQUIRE(p.sp == 1 || c.train.seq_len % (2 * p.sp) == 0, "train.seq_len (",
               c.train.seq_len, ") must be divisible by 2 * parallel.sp (", 2 * p.sp,
               ") for the zigzag split (parallel.sp_split = zigzag; contiguous needs only "
               "parallel.sp to divide it)");
  else
    RT_REQUIRE(c.train.seq_len % p.sp == 0, "train.seq_len (", c.train.seq_len,
               ") must be divisible by parallel.sp (", p.sp, ")");
  RT_REQUIRE(c.train.batch_size % p.dp == 0, "train.batch_size (", c.train.batch_size,
             ") must be divisible by parallel.dp (", p.dp, ")");
}

}  // namespace ratrain
