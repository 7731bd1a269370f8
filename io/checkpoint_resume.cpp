// Choosing, verifying and loading the checkpoint to resume from (see
// checkpoint_resume.hpp).
#include "io/checkpoint_resume.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "io/checkpoint_folder.hpp"
#include "io/checkpoint_format.hpp"
#include "io/checkpoint_reader.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

namespace fs = std::filesystem;

// World rank `root`'s `text` on every rank. Groups move f32/f64 tensors: one byte per
// f64 element, exact.
std::string broadcast_text(const Group& world, const std::string& text, int root) {
  Tensor length = Tensor::zeros({1}, DType::f64);
  if (world.rank() == root) length.data<double>()[0] = static_cast<double>(text.size());
  world.broadcast(length, root);
  Tensor bytes = Tensor::zeros({static_cast<std::int64_t>(length.item())}, DType::f64);
  if (world.rank() == root)
    for (std::size_t i = 0; i < text.size(); ++i)
      bytes.data<double>()[i] = static_cast<unsigned char>(text[i]);
  world.broadcast(bytes, root);
  std::string out;
  for (std::int64_t i = 0; i < bytes.numel(); ++i)
    out += static_cast<char>(static_cast<unsigned char>(bytes.data<double>()[i]));
  return out;
}

// The problem of the lowest world rank that found one, on every rank; nullopt if no
// rank found any.
std::optional<std::string> first_problem(const Group& world,
                                         const std::optional<std::string>& mine) {
  Tensor found = Tensor::zeros({world.size()}, DType::f64);
  if (mine) found.data<double>()[world.rank()] = 1;
  world.all_reduce_sum(found);
  for (int rank = 0; rank < world.size(); ++rank)
    if (found.data<double>()[rank] != 0) return broadcast_text(world, mine.value_or(""), rank);
  return std::nullopt;
}

// The checkpoint folders to try, in order (checkpoint_resume.hpp).
std::vector<std::string> candidates(const CheckpointSettings& s) {
  if (s.resume == "none") return {};
  if (s.resume == "auto") {
    const std::optional<std::string> latest = latest_checkpoint(s.dir);
    if (!latest) return {};
    if (!s.fallback) return {*latest};
    // `latest` and the complete checkpoints older than it, newest first.
    std::vector<std::string> all = complete_checkpoints(s.dir);
    all.erase(all.begin(), std::find(all.begin(), all.end(), *latest));
    return all;
  }
  if (fs::exists(fs::path(s.resume) / kCheckpointMetaFile)) return {s.resume};
  if (const std::optional<std::string> latest = latest_checkpoint(s.resume)) return {*latest};
  RT_FAIL("checkpoint.resume = '", s.resume, "' is neither a checkpoint folder (it has no ",
          kCheckpointMetaFile, ") nor a folder of checkpoints (it has no '",
          kCheckpointLatestFile, "' file); give one of those, auto or none");
}

// What the user can do when the last candidate fails.
std::string remedy(const CheckpointSettings& s) {
  if (s.resume != "auto") return "; give another checkpoint folder as checkpoint.resume";
  if (!s.fallback)
    return "; checkpoint.fallback=true resumes from the newest older checkpoint that verifies";
  return "; no older checkpoint verifies";
}

}  // namespace

std::optional<CheckpointMeta> resume_from_checkpoint(const CheckpointSettings& settings,
                                                     const Group& world,
                                                     const ParallelContext& ctx,
                                                     ParamStore& store, AdamW& optimizer) {
  const std::vector<std::string> folders = candidates(settings);
  for (std::size_t i = 0; i < folders.size(); ++i) {
    const std::string& folder = folders[i];
    std::optional<CheckpointMeta> meta;
    std::optional<std::string> problem;
    try {
      meta = read_checkpoint_meta((fs::path(folder) / kCheckpointMetaFile).string());
    } catch (const Error& e) {
      problem = e.what();
    }
    const auto start = std::chrono::steady_clock::now();
    if (meta) problem = verify_checkpoint_files(folder, *meta, world.rank(), world.size());
    if (const std::optional<std::string> failure = first_problem(world, problem)) {
      RT_REQUIRE(i + 1 < folders.size(), "cannot resume from checkpoint '", folder,
                 "': ", *failure, remedy(settings));
      if (world.rank() == 0)  // every rank has the same message
        log_warn("checkpoint '", folder, "' does not verify (", *failure,
                 "); falling back to '", folders[i + 1], "'");
      continue;
    }
    const double verify_s = seconds_since(start);
    const auto load_start = std::chrono::steady_clock::now();
    load_checkpoint_state(folder, *meta, store, optimizer, ctx);
    log_info("resumed from ", folder, " (iteration ", meta->iteration, ", saved under ",
             to_string(meta->layout), "; verified in ", seconds_text(verify_s), ", loaded in ",
             seconds_text(seconds_since(load_start)), ")");
    return meta;
  }
  if (settings.resume == "auto")
    log_info("no checkpoint to resume from in ", settings.dir, ": starting fresh");
  return std::nullopt;
}

}  // namespace ratrain
