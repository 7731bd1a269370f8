// Checkpoint names, piece descriptions and checksums (see checkpoint_format.hpp).
#include "io/checkpoint_format.hpp"

#include <zlib.h>

#include <algorithm>
#include <vector>

namespace ratrain {

std::string shard_file_name(int rank) { return "shard_" + std::to_string(rank) + ".h5"; }

std::string step_folder_name(std::int64_t iteration) {
  return "step_" + std::to_string(iteration);
}

std::string_view buffer_name(StateBuffer buffer) {
  switch (buffer) {
    case StateBuffer::params: return "params";
    case StateBuffer::exp_avg: return "exp_avg";
    case StateBuffer::exp_avg_sq: return "exp_avg_sq";
  }
  return "?";
}

std::vector<ShardPiece> shard_pieces(const ParamTable& table, const std::vector<ShardRange>& shard,
                                     bool last_stage_copy) {
  std::vector<ShardPiece> pieces;
  for (const ShardRange& range : shard)
    for (const ParamEntry& e : table.entries()) {
      const std::int64_t begin = std::max(e.offset, range.flat_begin);
      const std::int64_t end = std::min(e.offset + e.numel, range.flat_begin + range.numel);
      if (begin >= end) continue;
      pieces.push_back(
          {.piece = {.part = e,
                     .part_begin = begin - e.offset,
                     .count = end - begin,
                     .tied_copy = last_stage_copy && e.copies == StageCopies::first_and_last},
           .shard_offset = range.shard_offset + begin - range.flat_begin});
    }
  return pieces;
}

std::string piece_dataset(StateBuffer buffer, const CheckpointPiece& piece) {
  return detail::concat(buffer_name(buffer), "/", piece.part.name, "/", piece.part_begin);
}

std::string global_dataset(StateBuffer buffer, const std::string& name, bool tied_copy) {
  return detail::concat(tied_copy ? kTiedCopyPrefix : "", buffer_name(buffer), "/", name);
}

void write_piece_description(h5::File& file, const std::string& dataset,
                             const CheckpointPiece& piece) {
  const ShardSpec& s = piece.part.shard;
  file.write_ints_attribute("global_shape", piece.part.global_shape, dataset);
  file.write_int_attribute("shard_dim", s.dim, dataset);
  file.write_int_attribute("shard_segments", s.segments, dataset);
  file.write_int_attribute("shard_begin", s.begin, dataset);
  file.write_int_attribute("shard_length", s.length, dataset);
  file.write_int_attribute("part_begin", piece.part_begin, dataset);
  file.write_int_attribute("tied_copy", piece.tied_copy ? 1 : 0, dataset);
}

CheckpointPiece read_piece_description(const h5::File& file, const std::string& name,
                                       const std::string& dataset) {
  const Shape global_shape = file.read_ints_attribute("global_shape", dataset);
  const ShardSpec spec{.dim = static_cast<int>(file.read_int_attribute("shard_dim", dataset)),
                       .segments = file.read_int_attribute("shard_segments", dataset),
                       .begin = file.read_int_attribute("shard_begin", dataset),
                       .length = file.read_int_attribute("shard_length", dataset)};
  const auto rank = static_cast<int>(global_shape.size());
  const bool whole = spec.dim == -1;
  // ParamTable::add asserts these (a bug there); here they come from a file.
  RT_REQUIRE(rank >= 1 && std::all_of(global_shape.begin(), global_shape.end(),
                                      [](std::int64_t n) { return n > 0; }) &&
                 (whole || (spec.dim >= 0 && spec.dim < rank && spec.segments > 0 &&
                            global_shape[spec.dim] % spec.segments == 0 && spec.begin >= 0 &&
                            spec.length > 0 &&
                            spec.begin + spec.length <= global_shape[spec.dim] / spec.segments)),
             "checkpoint file '", file.path(), "': dataset '", dataset,
             "' describes an impossible part: global shape ", shape_str(global_shape),
             ", shard dim ", spec.dim, ", segments ", spec.segments, ", begin ", spec.begin,
             ", length ", spec.length);
  const Shape stored = file.shape(dataset);
  RT_REQUIRE(stored.size() == 1, "checkpoint file '", file.path(), "': dataset '", dataset,
             "' has shape ", shape_str(stored), "; a piece is one-dimensional");
  ParamTable table;
  table.add(name, global_shape, InitKind::normal, whole ? ShardSpec::whole() : spec);
  CheckpointPiece piece{.part = table.entries().front(),
                        .part_begin = file.read_int_attribute("part_begin", dataset),
                        .count = stored[0],
                        .tied_copy = file.read_int_attribute("tied_copy", dataset) != 0};
  RT_REQUIRE(piece.part_begin >= 0 && piece.part_begin + piece.count <= piece.part.numel,
             "checkpoint file '", file.path(), "': dataset '", dataset, "' holds elements [",
             piece.part_begin, ", ", piece.part_begin + piece.count, ") of a part of ",
             piece.part.numel, " elements");
  return piece;
}

std::uint32_t crc32_in_slices(const void* data, std::size_t bytes, std::size_t slice_bytes) {
  RT_ASSERT(slice_bytes > 0);
  const auto* begin = static_cast<const Bytef*>(data);
  const uLong empty = crc32_z(0, nullptr, 0);
  // crc32_z takes a size_t length: no 4 GiB limit.
  if (bytes < 2 * slice_bytes) return static_cast<std::uint32_t>(crc32_z(empty, begin, bytes));
  const auto slices = static_cast<std::int64_t>((bytes + slice_bytes - 1) / slice_bytes);
  std::vector<uLong> crcs(static_cast<std::size_t>(slices));
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t i = 0; i < slices; ++i) {
    const std::size_t at = static_cast<std::size_t>(i) * slice_bytes;
    crcs[static_cast<std::size_t>(i)] =
        crc32_z(empty, begin + at, std::min(slice_bytes, bytes - at));
  }
  uLong crc = crcs[0];
  for (std::int64_t i = 1; i < slices; ++i) {
    const std::size_t at = static_cast<std::size_t>(i) * slice_bytes;
    crc = crc32_combine64(crc, crcs[static_cast<std::size_t>(i)],
                          static_cast<z_off64_t>(std::min(slice_bytes, bytes - at)));
  }
  return static_cast<std::uint32_t>(crc);
}

std::uint32_t checksum_of(const Tensor& host) {
  RT_ASSERT(host.device() == Device::cpu);
  return crc32_in_slices(host.raw(), host.nbytes(), kChecksumSliceBytes);
}

}  // namespace ratrain
