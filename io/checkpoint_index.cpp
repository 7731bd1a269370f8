// Building index.h5 from the shard files (see checkpoint_index.hpp).
#include "io/checkpoint_index.hpp"

#include <filesystem>
#include <map>

#include "io/checkpoint_blocks.hpp"
#include "io/checkpoint_format.hpp"

namespace ratrain {
namespace {

// One global tensor of the index while its pieces are collected.
struct GlobalTensor {
  Shape shape;
  DType dtype = DType::f32;
  std::vector<h5::VirtualSource> sources;
  std::int64_t covered = 0;  // elements mapped so far
  std::string first_source;  // "shard_0.h5:params/x/0", for error messages
};

// Maps the elements of `piece`, stored in `file`:`dataset`, onto their places in `tensor`.
void add_piece(GlobalTensor& tensor, const std::string& name, const std::string& file,
               const std::string& dataset, const CheckpointPiece& piece, DType dtype) {
  const std::string source = file + ":" + dataset;
  if (tensor.sources.empty()) {
    tensor.shape = piece.part.global_shape;
    tensor.dtype = dtype;
    tensor.first_source = source;
  }
  RT_REQUIRE(tensor.shape == piece.part.global_shape && tensor.dtype == dtype,
             "checkpoint pieces of '", name, "' disagree: ", tensor.first_source, " is ",
             dtype_name(tensor.dtype), " of global shape ", shape_str(tensor.shape), ", ", source,
             " is ", dtype_name(dtype), " of ", shape_str(piece.part.global_shape));
  for (const GlobalBlock& block : global_blocks(piece.part, piece.part_begin, piece.count))
    tensor.sources.push_back(
        {.file = file,
         .dataset = "/" + dataset,
         .source_shape = {piece.count},
         .selection = h5::Hyperslab::range(block.part_begin - piece.part_begin, block.count),
         .target = block.global});
  tensor.covered += piece.count;
}

}  // namespace

ShardChecksums write_checkpoint_index(const std::string& folder, int world_size) {
  const std::string group = std::string(buffer_name(StateBuffer::params));
  std::map<std::string, GlobalTensor> tensors;  // by index dataset name
  ShardChecksums checksums;
  for (int rank = 0; rank < world_size; ++rank) {
    const std::string file = shard_file_name(rank);
    const h5::File shard((std::filesystem::path(folder) / file).string(), h5::Mode::read);
    if (!shard.exists(group)) continue;  // a replica's shard (sp > 0)
    const bool tp_rank_zero = shard.read_int_attribute("tp") == 0;
    for (const std::string& name : shard.list(group))
      for (const std::string& begin : shard.list(group + "/" + name)) {
        const CheckpointPiece piece =
            read_piece_description(shard, name, group + "/" + name + "/" + begin);
        const bool indexed = tp_rank_zero || !piece.part.shard.is_whole();
        for (StateBuffer buffer : kStateBuffers) {
          const std::string dataset = piece_dataset(buffer, piece);
          checksums[file][dataset] =
              static_cast<std::uint32_t>(shard.read_int_attribute(kChecksumAttribute, dataset));
          if (indexed)
            add_piece(tensors[global_dataset(buffer, name, piece.tied_copy)], name, file, dataset,
                      piece, shard.float_dtype(dataset));
        }
      }
  }

  h5::File index((std::filesystem::path(folder) / kCheckpointIndexFile).string(),
                 h5::Mode::truncate);
  for (const auto& [dataset, tensor] : tensors) {
    RT_REQUIRE(tensor.covered == shape_numel(tensor.shape), "checkpoint '", folder,
               "': the shards hold ", tensor.covered, " elements of '", dataset, "' of shape ",
               shape_str(tensor.shape), "; every element once was expected");
    index.write_virtual(dataset, tensor.dtype, tensor.shape, tensor.sources);
  }
  return checksums;
}

}  // namespace ratrain
