// Shard snapshots and shard files (see checkpoint_writer.hpp).
#include "io/checkpoint_writer.hpp"

#include <chrono>

#include "io/checkpoint_folder.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

using Clock = std::chrono::steady_clock;

// Queues the copy of `src` into elements [offset, offset + src.numel()) of `dst`.
void queue_copy(AsyncHostCopies& copies, const Tensor& dst, std::int64_t offset,
                const Tensor& src) {
  const Tensor into = dst.flat_view(offset, {src.numel()});
  copies.copy_to_host(into.raw(), src.raw(), src.device(), src.nbytes());
}

}  // namespace

std::size_t ShardStaging::bytes() const {
  std::size_t total = 0;
  for (const Tensor& b : buffers) total += b.nbytes();
  return total;
}

ShardStaging make_shard_staging(const ParamStore& store, const AdamW& optimizer,
                                const ParallelContext& ctx) {
  if (ctx.coords.sp != 0) return {};
  const std::int64_t shard_numel = optimizer.first_moment().numel();
  return {{Tensor::empty_pinned({shard_numel}, store.optimizer_values().dtype()),
           Tensor::empty_pinned({shard_numel}, optimizer.first_moment().dtype()),
           Tensor::empty_pinned({shard_numel}, optimizer.second_moment().dtype())}};
}

ShardSnapshot take_shard_snapshot(const ParamStore& store, AdamW& optimizer,
                                  const ParallelContext& ctx, std::int64_t iteration,
                                  const ShardStaging& staging) {
  ShardSnapshot snapshot;
  snapshot.rank = ctx.world_rank;
  snapshot.coords = ctx.coords;
  snapshot.layout = ctx.sizes;
  snapshot.iteration = iteration;
  // The sp ranks of one shard hold the same values and moments: sp rank 0 writes them.
  if (ctx.coords.sp != 0) return snapshot;
  const std::vector<ShardRange>& shard = optimizer.shard_ranges();
  snapshot.pieces = shard_pieces(store.table(), shard, /*last_stage_copy=*/ctx.coords.pp != 0);
  snapshot.buffers = staging.buffers;
  const auto copies = std::make_shared<AsyncHostCopies>();
  const Tensor& values = store.optimizer_values();
  for (const ShardRange& r : shard)
    queue_copy(*copies, staging.buffers[0], r.shard_offset,
               values.flat_view(r.flat_begin, {r.numel}));
  queue_copy(*copies, staging.buffers[1], 0, optimizer.first_moment());
  queue_copy(*copies, staging.buffers[2], 0, optimizer.second_moment());
  copies->close();
  optimizer.order_next_update_after(copies);
  snapshot.copies = copies;
  return snapshot;
}

ShardWriteStats write_shard(const std::string& path, const ShardSnapshot& snapshot) {
  ShardWriteStats stats;
  auto start = Clock::now();
  if (snapshot.copies) snapshot.copies->wait();
  stats.copy_wait_s = seconds_since(start);
  {
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
        start = Clock::now();
        file.write(dataset, piece);
        stats.write_s += seconds_since(start);
        start = Clock::now();
        file.write_int_attribute(kChecksumAttribute, checksum_of(piece), dataset);
        stats.checksum_s += seconds_since(start);
        if (kStateBuffers[b] == StateBuffer::params)
          write_piece_description(file, dataset, p.piece);
        stats.bytes += piece.nbytes();
      }
    }
  }
  // Each rank flushes its own shard, in parallel with the others and off the training
  // thread; the commit's sync of the folder then finds little left to write. Counted as
  // writing: until then the bytes may only be in the page cache.
  start = Clock::now();
  sync_to_disk(path);
  stats.write_s += seconds_since(start);
  return stats;
}

}  // namespace ratrain
