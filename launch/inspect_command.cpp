// `ratrain inspect SRC [--verify]`: what a checkpoint, a run folder or a model file
// holds, without loading it into a model (DESIGN.md "Launch"), so that a user can see
// what a resume or an export would start from, on a login node, in a second:
//   - a checkpoint folder (step_N): iteration, optimizer steps, data position, seed, the
//     layout that wrote it, its files and bytes, and every global tensor of index.h5
//     (parameters with their shapes; the moments have the same); --verify also reads
//     every shard dataset and compares its CRC-32 with meta.json, as a resume does, and
//     exits 1 naming the first file and dataset that differ;
//   - a run folder: its complete checkpoints (newest first, `latest` marked) and
//     model.h5, then the latest checkpoint as above (or model.h5 when there is none);
//   - a model file (model.h5): the model config and every parameter's shape.
// Reads only; one process, no MPI collectives.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint_folder.hpp"
#include "io/checkpoint_format.hpp"
#include "io/checkpoint_meta.hpp"
#include "io/checkpoint_reader.hpp"
#include "io/h5.hpp"
#include "io/model_file.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"

namespace ratrain {
namespace {

namespace fs = std::filesystem;

// 1234567 -> "1,234,567".
std::string grouped(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// 1536 -> "1.50 KiB": the largest binary unit that keeps the number at 1 or more.
std::string bytes_text(std::uintmax_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", value, units[unit]);
  return text;
}

std::uintmax_t folder_bytes(const fs::path& folder) {
  std::uintmax_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(folder))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

// Every dataset of `group`, a line each (name, shape), then one line with their count and
// total element count: "  14 parameters, 37,120 values" (the caller ends the line).
void print_tensors(const h5::File& file, const std::string& group) {
  const std::vector<std::string> names = file.list(group);
  std::int64_t total = 0;
  for (const std::string& name : names) {
    const Shape shape = file.shape(group + "/" + name);
    total += shape_numel(shape);
    std::printf("    %-48s %s\n", name.c_str(), shape_str(shape).c_str());
  }
  std::printf("  %zu parameters, %s values", names.size(), grouped(total).c_str());
}

// Prints the checkpoint in `folder`; with `verify`, checks every dataset's CRC-32.
// Returns the exit status: 1 if verification found a problem.
int inspect_checkpoint(const fs::path& folder, bool verify) {
  const CheckpointMeta meta = read_checkpoint_meta((folder / kCheckpointMetaFile).string());
  std::printf("checkpoint %s\n", folder.string().c_str());
  std::printf("  iteration %lld (%lld optimizer steps), seed %llu\n",
              static_cast<long long>(meta.iteration), static_cast<long long>(meta.optimizer_steps),
              static_cast<unsigned long long>(meta.seed));
  if (meta.data_samples > 0)
    std::printf("  data: next sample %s (epoch %lld, sample %s of %s)\n",
                grouped(meta.data_cursor).c_str(),
                static_cast<long long>(meta.data_cursor / meta.data_samples),
                grouped(meta.data_cursor % meta.data_samples).c_str(),
                grouped(meta.data_samples).c_str());
  std::printf("  written by layout %s: %lld shard file%s + %s, %s on disk\n",
              to_string(meta.layout).c_str(), static_cast<long long>(meta.layout.world()),
              meta.layout.world() == 1 ? "" : "s", kCheckpointIndexFile,
              bytes_text(folder_bytes(folder)).c_str());

  const h5::File index((folder / kCheckpointIndexFile).string(), h5::Mode::read);
  std::printf("  parameters (index.h5 params/; exp_avg/ and exp_avg_sq/ alike):\n");
  print_tensors(index, "params");
  std::printf("\n");
  if (index.exists("tied_copy"))
    std::printf("  the last pipeline stage's copy of the tied embedding: tied_copy/\n");

  if (!verify) return 0;
  if (const std::optional<std::string> problem = verify_checkpoint_files(folder.string(), meta, 0, 1)) {
    std::fprintf(stderr, "ratrain inspect: %s\n", problem->c_str());
    return 1;
  }
  std::size_t datasets = 0;
  for (const auto& [file, sums] : meta.checksums) datasets += sums.size();
  std::printf("  verified: %zu datasets in %zu shard file%s, every CRC-32 as meta.json lists\n",
              datasets, meta.checksums.size(), meta.checksums.size() == 1 ? "" : "s");
  return 0;
}

int inspect_model_file(const fs::path& path) {
  const ModelConfig config = read_model_file_config(path.string());
  std::printf("model file %s\n  config %s\n", path.string().c_str(),
              model_config_to_json(config).c_str());
  const h5::File file(path.string(), h5::Mode::read);
  std::printf("  parameters:\n");
  print_tensors(file, "params");
  std::printf(" (the config's count: %s)\n", grouped(config.num_parameters()).c_str());
  return 0;
}

// A run folder: its checkpoints and model file, then the latest checkpoint in detail.
int inspect_run(const fs::path& run, bool verify) {
  const std::string root = (run / "checkpoints").string();
  const std::optional<std::string> latest = latest_checkpoint(root);
  const std::vector<std::string> checkpoints = complete_checkpoints(root);
  const fs::path model = run / "model.h5";
  RT_REQUIRE(!checkpoints.empty() || fs::exists(model), "ratrain inspect: '", run.string(),
             "' is a folder with neither index.h5 (a checkpoint folder), checkpoints/ nor "
             "model.h5 (a run folder)");
  std::printf("run %s\n  %zu complete checkpoint%s in %s%s\n", run.string().c_str(),
              checkpoints.size(), checkpoints.size() == 1 ? "" : "s", root.c_str(),
              checkpoints.empty() ? "" : " (newest first):");
  for (const std::string& c : checkpoints) {
    const bool is_latest = latest && fs::equivalent(*latest, c);
    std::printf("    %-40s %s%s\n", fs::path(c).filename().string().c_str(),
                bytes_text(folder_bytes(c)).c_str(), is_latest ? "  <- latest" : "");
  }
  std::printf("  model.h5: %s\n\n", fs::exists(model) ? "present" : "none (the run has not finished)");
  if (latest) return inspect_checkpoint(*latest, verify);
  return inspect_model_file(model);
}

}  // namespace

int inspect_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse(
      "inspect", args,
      {{"verify", false, "read every shard dataset and check its CRC-32 (checkpoints)"}});
  RT_REQUIRE(cl.positional.size() == 1 && cl.overrides.empty(),
             "usage: ratrain inspect SRC [--verify] (SRC: a checkpoint folder, a run folder or "
             "a model file)");
  const fs::path source = cl.positional[0];
  RT_REQUIRE(fs::exists(source), "ratrain inspect: '", source.string(), "' does not exist");
  const bool verify = cl.has("verify");
  if (!fs::is_directory(source)) {
    RT_REQUIRE(!verify, "ratrain inspect: --verify checks checkpoints; '", source.string(),
               "' is a file");
    return inspect_model_file(source);
  }
  if (fs::exists(source / kCheckpointIndexFile)) return inspect_checkpoint(source, verify);
  return inspect_run(source, verify);
}

}  // namespace ratrain
