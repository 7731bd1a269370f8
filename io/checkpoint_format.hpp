// The on-disk format of a checkpoint (DESIGN.md "Checkpoints (HDF5)"): names, and the
// description every stored piece carries.
//
//   <checkpoint.dir>/
//     latest                  text: the folder name of the newest complete checkpoint
//     step_<N>/               N = training iterations completed
//       shard_<rank>.h5       one per world rank (below)
//       index.h5              virtual datasets: every tensor as the global tensor
//       meta.json             checkpoint_meta.hpp
//     step_<M>.partial/       a save in progress (or one a crash interrupted)
//
// shard_<rank>.h5 holds this rank's ZeRO-1 shard of the three flat buffers, cut into
// pieces by parameter: for every parameter part p overlapping the shard, and every
// stretch of the shard it overlaps (a shard is several ranges of the flat buffers when
// the optimizer buckets its reduce-scatter),
//   params/<p>/<b>       (count,) the values as the optimizer holds them (the f32 master
//                        copy where the model computes in bf16)
//   exp_avg/<p>/<b>      (count,) AdamW's first moment
//   exp_avg_sq/<p>/<b>   (count,) AdamW's second moment
// where <b> is the piece's first element in p's part (row-major). params/<p>/<b> carries
// the piece's description (write_piece_description): the global shape, the part's
// ShardSpec, part_begin = <b>, and tied_copy; every dataset carries its CRC-32 (attribute
// crc32). Root attributes: rank, iteration, layout ("tp=2 sp=1 pp=1 dp=2"), and the
// rank's coordinates tp, sp, pp, dp.
//
// Invariants:
// - Every element of the flat buffers of each (tp, pp) coordinate is stored exactly
//   once: the dp ranks' shards are disjoint, and ranks with sp > 0, which hold replicas
//   of their sp = 0 peer's shard, write a shard file with no pieces (so that shard_0 ..
//   shard_<world-1> always exist). Whole parameters, the same on every TP rank, are so
//   stored once per TP rank; index.h5 uses TP rank 0's.
// - The last pipeline stage's copy of the tied embedding is stored as its own pieces
//   with tied_copy = 1; index.h5 shows it apart (tied_copy/...), so the last stage
//   resumes from its own bytes.
// - Files are written under step_<N>.partial and renamed when complete: a folder named
//   step_<N> is always complete.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/h5.hpp"
#include "model/grad_buckets.hpp"
#include "model/param_store.hpp"

namespace ratrain {

inline constexpr const char* kCheckpointIndexFile = "index.h5";
inline constexpr const char* kCheckpointMetaFile = "meta.json";
inline constexpr const char* kCheckpointLatestFile = "latest";
inline constexpr const char* kPartialSuffix = ".partial";
// The prefix of the index's datasets of the tied embedding's last-stage copy.
inline constexpr const char* kTiedCopyPrefix = "tied_copy/";

std::string shard_file_name(int rank);                   // "shard_3.h5"
std::string step_folder_name(std::int64_t iteration);    // "step_10"

// The three flat buffers a checkpoint holds, by their group name in every file.
enum class StateBuffer { params, exp_avg, exp_avg_sq };
inline constexpr std::array<StateBuffer, 3> kStateBuffers = {
    StateBuffer::params, StateBuffer::exp_avg, StateBuffer::exp_avg_sq};
std::string_view buffer_name(StateBuffer buffer);

// One stored piece: elements [part_begin, part_begin + count) of a rank's part of a
// parameter (part.name, global_shape, shape and shard are meaningful; offset is not).
struct CheckpointPiece {
  ParamEntry part;
  std::int64_t part_begin = 0;
  std::int64_t count = 0;
  bool tied_copy = false;  // the last pipeline stage's copy of the tied embedding
};

// A piece of a rank's ZeRO-1 shard (AdamW::shard_ranges()) and where it sits there.
struct ShardPiece {
  CheckpointPiece piece;
  std::int64_t shard_offset = 0;  // its first element's index in the shard
};
// The pieces of `shard` (ranges of the flat buffers of `table`): one per parameter and
// range they share, in range order, then table order. tied_copy marks the tied
// embedding when `last_stage_copy` (a pipeline stage after the first holds it).
std::vector<ShardPiece> shard_pieces(const ParamTable& table, const std::vector<ShardRange>& shard,
                                     bool last_stage_copy);

// "exp_avg/<name>/<part_begin>": where `piece` of `buffer` lives in a shard file.
std::string piece_dataset(StateBuffer buffer, const CheckpointPiece& piece);
// "tied_copy/exp_avg/<name>" or "exp_avg/<name>": the global tensor in index.h5.
std::string global_dataset(StateBuffer buffer, const std::string& name, bool tied_copy);

// The description attributes on dataset `dataset` (global_shape, shard_dim,
// shard_segments, shard_begin, shard_length, part_begin, tied_copy).
void write_piece_description(h5::File& file, const std::string& dataset,
                             const CheckpointPiece& piece);
// Reads them back from params/<name>/<b>; a missing or inconsistent attribute is an
// error naming the file and dataset.
CheckpointPiece read_piece_description(const h5::File& file, const std::string& name,
                                       const std::string& dataset);

// The CRC-32 (zlib's polynomial) of a host tensor's bytes.
std::uint32_t checksum_of(const Tensor& host);
// The CRC-32 of `bytes` bytes at `data`, computed in slices of `slice_bytes` on the
// OpenMP threads and combined (crc32_combine): one thread checksums ~2.4 GiB/s, so the
// 16.5 GiB of a 1.5B model's state took 7 s to save and as long to verify on resume.
// Below two slices, one call on this thread (small tensors, CPU training's own threads).
std::uint32_t crc32_in_slices(const void* data, std::size_t bytes, std::size_t slice_bytes);
inline constexpr std::size_t kChecksumSliceBytes = std::size_t{64} << 20;
inline constexpr const char* kChecksumAttribute = "crc32";

}  // namespace ratrain
