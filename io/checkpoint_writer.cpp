// Shard snapshots and shard files (see checkpoint_writer.hpp).
#include "io/checkpoint_writer.hpp"

namespace ratrain {
namespace {

// The optimizer values of `shard`'s ranges, packed in shard order: (S,) on the host.
Tensor shard_values(const ParamStore& store, const std::vector<ShardRange>& shard,
                    std::int64_t shard_numel) {
  const Tensor& flat = store.optimizer_values();
  Tensor host = Tensor::empty({shard_numel}, flat.dtype());
  for (const ShardRange& r : shard)
    host.flat_view(r.shard_offset, {r.numel}).copy_from(flat.flat_view(r.flat_begin, {r.numel}));
  return host;
}

}  // namespace

ShardSnapshot take_shard_snapshot(const ParamStore& store, AdamW& optimizer,
                                  const ParallelContext& ctx, std::int64_t iteration) {
  ShardSnapshot snapshot;
  snapshot.rank = ctx.world_rank;
  snapshot.coords = ctx.coords;
  snapshot.layout = ctx.sizes;
  snapshot.iteration = iteration;
  // The sp ranks of one shard hold the same values and moments: sp rank 0 writes them.
  if (ctx.coords.sp != 0) return snapshot;
  const std::vector<ShardRange>& shard = optimizer.shard_ranges();
  snapshot.pieces = shard_pieces(store.table(), shard, /*last_stage_copy=*/ctx.coords.pp != 0);
  const std::int64_t shard_numel = optimizer.first_moment().numel();
  snapshot.buffers = {shard_values(store, shard, shard_numel),
                      optimizer.first_moment().to(Device::cpu),
                      optimizer.second_moment().to(Device::cpu)};
  return snapshot;
}

void write_shard(const std::string& path, const ShardSnapshot& snapshot) {
  h5::File file(path, h5::Mode::truncate);
  file.write_int_attribute("rank", snapshot.rank);
  file.write_int_attribute("iteration", snapshot.iteration);
  file.write_string_attribute("layout", to_string(snapshot.layout));
  for (Axis axis : kAxes)
    file.write_int_attribute(std::string(axis_name(axis)), snapshot.coords.of(axis));
  for (const ShardPiece& p : snapshot.pieces) {
    for (std::size_t b = 0; b < kStateBuffers.size(); ++b) {
      const std::string dataset = piece_dataset(kStateBuffers[b], p.piece);
      const Tensor piece = snapshot.buffers[b].flat_view(p.shard_offset, {p.piece.count});
      file.write(dataset, piece);
      file.write_int_attribute(kChecksumAttribute, checksum_of(piece), dataset);
      if (kStateBuffers[b] == StateBuffer::params) write_piece_description(file, dataset, p.piece);
    }
  }
}

}  // namespace ratrain
