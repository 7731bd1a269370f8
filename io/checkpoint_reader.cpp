// Verifying and loading checkpoints (see checkpoint_reader.hpp).
#include "io/checkpoint_reader.hpp"

#include <filesystem>

#include "io/checkpoint_blocks.hpp"
#include "io/checkpoint_format.hpp"
#include "io/h5.hpp"

namespace ratrain {
namespace {

// Throws at the first shard file of the share that fails its checks.
void verify_share(const std::string& folder, const CheckpointMeta& meta, int first, int stride) {
  const auto file_in_folder = [&](const std::string& name) {
    const std::string path = (std::filesystem::path(folder) / name).string();
    RT_REQUIRE(std::filesystem::exists(path), "checkpoint '", folder, "' is missing '", name,
               "'");
    return path;
  };
  if (first == 0) h5::File(file_in_folder(kCheckpointIndexFile), h5::Mode::read);
  for (int rank = first; rank < meta.layout.world(); rank += stride) {
    const std::string name = shard_file_name(rank);
    const h5::File shard(file_in_folder(name), h5::Mode::read);
    const auto listed = meta.checksums.find(name);
    if (listed == meta.checksums.end()) continue;  // a replica's shard: no pieces
    for (const auto& [dataset, expected] : listed->second) {
      const std::uint32_t found = checksum_of(shard.read(dataset, shard.float_dtype(dataset)));
      RT_REQUIRE(found == expected, "checkpoint shard '", shard.path(), "': dataset '", dataset,
                 "' is corrupt (its CRC-32 is ", found, ", meta.json records ", expected, ")");
    }
  }
}

// Where `entry`'s tensor of `buffer` is in the index: the last stage's own copy of the
// tied embedding if it has one there, else the global tensor; its shape is checked.
std::string index_dataset(const h5::File& index, StateBuffer buffer, const ParamEntry& entry,
                          bool last_stage_copy) {
  const std::string copy = global_dataset(buffer, entry.name, /*tied_copy=*/true);
  const std::string dataset =
      last_stage_copy && index.exists(copy) ? copy : global_dataset(buffer, entry.name, false);
  const Shape stored = index.shape(dataset);
  RT_REQUIRE(stored == entry.global_shape, "checkpoint index '", index.path(), "': dataset '",
             dataset, "' has shape ", shape_str(stored), " but this model's ", entry.name, " is ",
             shape_str(entry.global_shape), " (a checkpoint of another model?)");
  return dataset;
}

}  // namespace

std::optional<std::string> verify_checkpoint_files(const std::string& folder,
                                                   const CheckpointMeta& meta, int first,
                                                   int stride) {
  try {
    verify_share(folder, meta, first, stride);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void load_checkpoint_state(const std::string& folder, const CheckpointMeta& meta,
                           ParamStore& store, AdamW& optimizer, const ParallelContext& ctx) {
  const h5::File index((std::filesystem::path(folder) / kCheckpointIndexFile).string(),
                       h5::Mode::read);
  const bool last_stage_copy = ctx.coords.pp != 0;

  // Every parameter part, whole: each one hyperslab of its global tensor.
  Tensor values = Tensor::zeros({store.padded_numel()}, store.optimizer_values().dtype());
  for (const ParamEntry& e : store.table().entries()) {
    Tensor part = values.flat_view(e.offset, {e.numel});
    index.read_hyperslab(index_dataset(index, StateBuffer::params, e, last_stage_copy),
                         part_selection(e), part);
  }

  // The moments of this rank's shard, piece by piece: a piece is any range of a part.
  Tensor& m = optimizer.first_moment();
  Tensor& v = optimizer.second_moment();
  const std::vector<std::pair<StateBuffer, Tensor>> moments = {
      {StateBuffer::exp_avg, Tensor::zeros(m.shape(), m.dtype())},
      {StateBuffer::exp_avg_sq, Tensor::zeros(v.shape(), v.dtype())}};
  for (const ShardPiece& p : shard_pieces(store.table(), optimizer.shard_ranges(), last_stage_copy))
    for (const auto& [buffer, host] : moments) {
      const std::string dataset = index_dataset(index, buffer, p.piece.part, last_stage_copy);
      for (const GlobalBlock& block :
           global_blocks(p.piece.part, p.piece.part_begin, p.piece.count)) {
        Tensor into = host.flat_view(p.shard_offset + block.part_begin - p.piece.part_begin,
                                     {block.count});
        index.read_hyperslab(dataset, block.global, into);
      }
    }

  store.optimizer_values().copy_from(values);
  store.publish_master();
  m.copy_from(moments[0].second);
  v.copy_from(moments[1].second);
  optimizer.restore_steps_taken(meta.optimizer_steps);
}

}  // namespace ratrain
