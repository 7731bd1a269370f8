// Attention over an explicit key set on the GPU, and the log-sum-exp merge of two
// partial results: the compute of sequence-parallel attention, the functions of
// kernels/cpu/attention_keys.cpp (ops.hpp "attention over an explicit key set").
// q, out, dout, dq (B, Tq, H, dh) and k, v, dk, dv (B, Tk, H, dh) in one storage type
// (bf16 or f32); lse, delta (B, H, Tq) f32; key_positions (Tk) i32 on the device.
// Arithmetic in fp32. Query t sits at position q_begin + t, key n at key_positions[n].
//
// Kernels (CUDA cores, any even dh <= 256), on the tiles of attention_keys.cuh:
//   forward   the SIMT forward's CTA (attention_forward_simt.cuh: 32 queries of one
//             (b, h) pair, 4 warps of 8 rows, online softmax in registers, tiles of 32
//             keys staged as fp32 in shared memory) over the key tiles of its query tile.
//             A query that sees no key gets out = 0, lse = -inf.
//   backward  the SIMT backward's CTA (attention_backward_simt.cuh: one tile of 32 keys,
//             dk, dv in registers over query steps of 32, dq through fp32 atomics) over
//             the query rows that can see its keys, given the FINAL out and lse.
//             Everything is ADDED: dk, dv once per row by the CTA owning the key; dq with
//             atomics straight into dq when f32, else into a zeroed f32 scratch that one
//             pass adds to dq. So the call's terms are summed in fp32 and rounded into a
//             bf16 gradient once. dq is not bitwise deterministic (atomics), dk, dv are.
//   merge     one warp per query row, in place.
//   delta     dout . out per query row, one warp each (attention_common.cuh).
// Both tiled kernels share their per-warp compute with the whole-sequence SIMT kernels;
// only which keys they stage (rows from the plan, positions for the mask) differs.
//
// The host builds the key set's view (ListedKeys) from a host copy of the positions that
// the op's checks already made (ops_attention_keys.cpp): it lists the global keys' rows
// and uploads that list (one small copy) unless they are simply the leading rows (always
// so when dense or local only).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cuda/attention_backward_simt.cuh"
#include "kernels/cuda/attention_forward_simt.cuh"
#include "kernels/cuda/attention_keys.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/dq_accumulator.cuh"
#include "runtime/index_tensors.hpp"

namespace ratrain::cuda {
namespace {

// ---- kernels --------------------------------------------------------------------------

// ListedQueryTilePlan's search on the device: the first n in [first, end] with value(n) >
// x (end when none), value increasing in n. A 32-way search by the lanes of a warp: each
// round the lanes test the last entries of 32 equal parts and keep the part where the
// values pass x, so log_32 of the range rounds of one load per lane (3 for Tk <= 32768).
// Every lane of the warp calls it with the same arguments and gets the same result.
struct WarpSearch {
  int lane;
  template <typename Value>
  __device__ int operator()(int first, int end, int x, const Value& value) const {
    int lo = first, hi = end;  // value(n) <= x for n < lo, > x for n >= hi
    while (lo < hi) {
      const int step = (hi - lo + 31) / 32;
      const int probe = lo + (lane + 1) * step - 1;  // last entry of part `lane`
      const bool at_most = probe < hi && value(probe) <= x;
      // Parts whose last entry is <= x: a prefix of the lanes, values being increasing.
      lo += __popc(__ballot_sync(0xffffffffu, at_most)) * step;
      hi = min(hi, lo + step - 1);  // the first part's last entry that is > x (or end)
    }
    return lo;
  }
};

// Stages the rows of a tile's kSlots key slots into shared memory as fp32: slot s from
// row __shfl(slot_row, s), zeros where that is -1 (past the tile's end). Warp w copies
// slots w, w + kWarps, ...; lane = column. slot_row: the row of slot `lane`, in every warp.
template <int kSlots, int kWarps, typename T>
__device__ __forceinline__ void stage_key_rows(const T* k, const T* v, std::int64_t stride,
                                               int slot_row, int dh, float* s_k, int k_pitch,
                                               float* s_v, int v_pitch, int warp, int lane) {
  static_assert(kSlots <= 32, "one slot per lane");
  for (int slot = warp; slot < kSlots; slot += kWarps) {
    const int row = __shfl_sync(0xffffffffu, slot_row, slot);
    for (int c = lane; c < dh; c += 32) {
      float kv = 0.0f, vv = 0.0f;
      if (row >= 0) {
        kv = to_float(k[row * stride + c]);
        vv = to_float(v[row * stride + c]);
      }
      s_k[slot * k_pitch + c] = kv;
      s_v[slot * v_pitch + c] = vv;
    }
  }
}

template <typename T>
struct KeysForwardArgs {
  const T* q;          // (B, Tq, H, dh)
  const T* k;          // (B, Tk, H, dh)
  const T* v;          // (B, Tk, H, dh)
  T* out;              // (B, Tq, H, dh)
  float* lse;          // (B, H, Tq): natural log-sum-exp of the scaled scores
  AttentionShape q_shape, k_shape;
  ListedKeys keys;
  float scale_log2;    // log2(e) / sqrt(dh)
};

// One CTA per (b, h) pair and tile of SimtForwardConfig::kBlockM query rows.
// kCols: output columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtForwardConfig::kThreads)
    attention_forward_keys_kernel(KeysForwardArgs<T> args, TileOrder order) {
  using Cfg = SimtForwardConfig;
  constexpr int kRows = Cfg::kRowsPerWarp;
  const ListedKeys& keys = args.keys;
  const int dh = args.q_shape.dh, k_pitch = dh + 1;
  extern __shared__ float smem[];
  float* s_q = smem;                          // (kBlockM, dh)
  float* s_k = s_q + Cfg::kBlockM * dh;       // (kBlockN, dh + 1)
  float* s_v = s_k + Cfg::kBlockN * k_pitch;  // (kBlockN, dh)

  const TileOrder::Item item = order.at(blockIdx.x);
  const int bh = item.bh;
  // The last query tiles see the most keys: schedule them first.
  const int t0 = (order.tiles - 1 - item.tile) * Cfg::kBlockM;
  const int t1 = min(t0 + Cfg::kBlockM, keys.query_count);
  const std::int64_t stride = args.q_shape.row_stride();  // H dh, in q and k alike
  const T* q_head = args.q + args.q_shape.head_base(bh);
  const std::int64_t k_base = args.k_shape.head_base(bh);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const ListedQueryTilePlan plan =
      ListedQueryTilePlan::of(keys, t0, t1, Cfg::kBlockN, WarpSearch{lane});

  for (int e = threadIdx.x; e < Cfg::kBlockM * dh; e += Cfg::kThreads) {
    const int r = e / dh, c = e % dh;
    s_q[e] = t0 + r < t1 ? to_float(q_head[(t0 + r) * stride + c]) : 0.0f;
  }

  SimtForwardRows<kCols> rows;
  const int i_first = keys.q_begin + t0 + warp * kRows;  // position of the warp's row 0
  for (int t = 0; t < plan.tiles; ++t) {
    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    // Row and position of key slot `lane` (the same in every warp); -1 past the end.
    const int slot_row = lane < tile.count ? keys.row(tile, lane) : -1;
    const int slot_position = slot_row >= 0 ? keys.positions[slot_row] : -1;
    __syncthreads();  // the previous tile's readers are done (and s_q is written)
    stage_key_rows<Cfg::kBlockN, Cfg::kWarps>(args.k + k_base, args.v + k_base, stride, slot_row,
                                              dh, s_k, k_pitch, s_v, dh, warp, lane);
    __syncthreads();
    rows.add_tile(s_q + warp * kRows * dh, s_k, s_v, dh, args.scale_log2, lane, [&](int r) {
      return slot_row >= 0 && keys.sets.visible(tile.local, i_first + r, slot_position);
    });
  }
  rows.store(args.out + args.q_shape.head_base(bh), stride,
             args.lse + args.q_shape.stat_base(bh), t0 + warp * kRows, t1, dh, lane);
}

template <typename T>
struct KeysBackwardArgs {
  const T* q;          // (B, Tq, H, dh)
  const T* dout;       // (B, Tq, H, dh)
  const T* k;          // (B, Tk, H, dh)
  const T* v;          // (B, Tk, H, dh)
  const float* lse;    // (B, H, Tq): the FINAL lse of the queries
  const float* delta;  // (B, H, Tq): dout_i . out_i with the FINAL out
  float* dq_acc;       // (B, Tq, H, dh) fp32: dq itself (f32) or a zeroed scratch; atomics
  T* dk;               // (B, Tk, H, dh): added to once per row, by the key's owner
  T* dv;               // (B, Tk, H, dh)
  AttentionShape q_shape, k_shape;
  ListedKeys keys;
  float scale_log2;  // log2(e) / sqrt(dh)
  float scale;       // 1 / sqrt(dh)
};

// One CTA per (b, h) pair and key tile of ListedBackwardPlan (SimtBackwardConfig::kBlockN
// keys). kCols: columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtBackwardConfig::kThreads)
    attention_backward_keys_kernel(KeysBackwardArgs<T> args, TileOrder order) {
  using Cfg = SimtBackwardConfig;
  constexpr int kKeys = Cfg::kKeysPerWarp;
  const ListedKeys& keys = args.keys;
  const int dh = args.q_shape.dh;
  extern __shared__ float smem[];
  const SimtBackwardSmem s = SimtBackwardSmem::carve(smem, dh);

  const ListedBackwardPlan plan = ListedBackwardPlan::of(keys, Cfg::kBlockN);
  const TileOrder::Item item = order.at(blockIdx.x);
  const KeyTileWork work = plan.work(keys, item.tile, Cfg::kBlockN);
  if (work.empty()) return;  // CTA-uniform, before any barrier
  const KeyTile& tile = work.keys;
  const int bh = item.bh;
  const std::int64_t stride = args.q_shape.row_stride();  // H dh, in q and k alike
  const std::int64_t q_base = args.q_shape.head_base(bh), k_base = args.k_shape.head_base(bh);
  const std::int64_t stat = args.q_shape.stat_base(bh);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  // Row and position of key slot `lane` (the same in every warp); -1 past the end.
  const int slot_row = lane < tile.count ? keys.row(tile, lane) : -1;
  const int slot_position = slot_row >= 0 ? keys.positions[slot_row] : -1;
  stage_key_rows<Cfg::kBlockN, Cfg::kWarps>(args.k + k_base, args.v + k_base, stride, slot_row,
                                            dh, s.k, dh, s.v, dh, warp, lane);
  // Position of the key of slot 8 warp + r, or: -1 past the tile's end, kNotOwned for a
  // global key in a local tile (its global tile owns it). Neither is seen by any query
  // (positions are >= 0 and queries < 2^30), so the mask needs no rule but the window.
  constexpr int kNotOwned = 0x7fffffff;
  const int own_position =
      tile.local && slot_position >= 0 && keys.sets.is_global(slot_position) ? kNotOwned : slot_position;
  int key_position[kKeys];
#pragma unroll
  for (int r = 0; r < kKeys; ++r)
    key_position[r] = __shfl_sync(0xffffffffu, own_position, warp * kKeys + r);

  SimtKeyGradients<kCols> grads;
  const SimtQueryHead<T> head{args.q + q_base,    args.dout + q_base,   args.lse + stat,
                              args.delta + stat,  args.dq_acc + q_base, stride,
                              keys.query_count};
  const int m_end = (work.query_end + Cfg::kBlockM - 1) / Cfg::kBlockM;
  for (int m = work.query_first / Cfg::kBlockM; m < m_end; ++m)
    grads.add_query_step(s, head, m * Cfg::kBlockM, tile.count, dh, args.scale_log2, args.scale,
                         warp, lane, [&](int r, int t) {
                           const int i = keys.q_begin + t, j = key_position[r];
                           return j >= 0 && j <= i && (!tile.local || i - j <= keys.sets.window);
                         });

  // Add to the keys this CTA owns: all of a global tile, the non-global ones of a local.
#pragma unroll
  for (int r = 0; r < kKeys; ++r) {
    const int row = __shfl_sync(0xffffffffu, slot_row, warp * kKeys + r);
    if (key_position[r] < 0 || key_position[r] == kNotOwned) continue;
    const std::int64_t at = k_base + row * stride;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + 32 * c;
      if (col >= dh) continue;
      args.dk[at + col] = from_float<T>(to_float(args.dk[at + col]) + grads.dk[r][c] * args.scale);
      args.dv[at + col] = from_float<T>(to_float(args.dv[at + col]) + grads.dv[r][c]);
    }
  }
}

// The merge of ops.hpp, per query row (b, t, h), with weights relative to the larger lse
// (both <= 1, their sum in [1, 2]):
//   lse = m + log(w + w_part),  out = (w out + w_part part_out) / (w + w_part),
//   m = max(lse, part_lse), w = e^(lse - m), w_part = e^(part_lse - m).
// Both lse -inf: the row stays as it is (out 0 from the forward). Lane 0 reads the two
// lse and shuffles them to the warp, so no lane reads lse after lane 0 rewrote it.
template <typename T>
__global__ void attention_merge_kernel(T* out, float* lse, const T* part_out,
                                       const float* part_lse, AttentionShape shape) {
  const std::int64_t row = std::int64_t{blockIdx.x} * RowLaunch::kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= shape.rows()) return;  // warp-uniform
  const std::int64_t stat = stat_of_row(row, shape);
  float own = 0.0f, part = 0.0f;
  if (lane == 0) {
    own = lse[stat];
    part = part_lse[stat];
  }
  own = __shfl_sync(0xffffffffu, own, 0);
  part = __shfl_sync(0xffffffffu, part, 0);
  const float m = fmaxf(own, part);
  if (m == -INFINITY) return;  // both parts empty (warp-uniform)
  const float own_weight = expf(own - m), part_weight = expf(part - m);
  const float total = own_weight + part_weight;
  const float inv = 1.0f / total;
  T* out_row = out + row * shape.dh;
  const T* part_row = part_out + row * shape.dh;
  // kUnroll columns per lane at a time, all loaded before any is stored: the loads of a
  // row then travel together rather than one round trip each.
  constexpr int kUnroll = 4;
  for (int c0 = lane; c0 < shape.dh; c0 += 32 * kUnroll) {
    float own_value[kUnroll], part_value[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * u;
      own_value[u] = c < shape.dh ? to_float(out_row[c]) : 0.0f;
      part_value[u] = c < shape.dh ? to_float(part_row[c]) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + 32 * u;
      if (c < shape.dh)
        out_row[c] = from_float<T>((own_weight * own_value[u] + part_weight * part_value[u]) * inv);
    }
  }
  if (lane == 0) lse[stat] = m + logf(total);
}

// ---- host side --------------------------------------------------------------------------

// The key set's view for the kernels and the device list of global rows it points to.
struct DeviceKeySet {
  ListedKeys keys;
  Tensor global_rows;  // (global_count) i32 on the device; undefined when not needed
};

// Checks that positions fit the kernels' int arithmetic and builds the view.
// host_positions: the same values as key_positions, on the host.
DeviceKeySet device_key_set(const Sparsity& rule, std::int64_t q_begin, const AttentionShape& q_shape,
                            const Tensor& key_positions, const Tensor& host_positions,
                            const char* op) {
  const std::int64_t q_end = q_begin + q_shape.seq;
  RT_REQUIRE(q_end < (std::int64_t{1} << 30), op, ": query positions up to ", q_end,
             " exceed the CUDA kernels' int range (2^30)");
  const int count = static_cast<int>(key_positions.numel());
  const KeySets sets = KeySets::of(rule, static_cast<int>(q_end));
  const std::vector<int> rows = global_rows_of(sets, host_positions.data<std::int32_t>(), count);
  DeviceKeySet set{.keys = ListedKeys{.sets = sets,
                                      .positions = static_cast<const int*>(key_positions.raw()),
                                      .global_rows = nullptr,
                                      .count = count,
                                      .global_count = static_cast<int>(rows.size()),
                                      .q_begin = static_cast<int>(q_begin),
                                      .query_count = q_shape.seq},
                   .global_rows = Tensor()};
  if (!rows_are_leading(rows)) {  // uploaded once per distinct list, not per call
    set.global_rows = index_tensor(std::vector<std::int32_t>(rows.begin(), rows.end()), Device::cuda);
    set.keys.global_rows = static_cast<const int*>(set.global_rows.raw());
  }
  return set;
}

float scale_log2_of(int dh) { return static_cast<float>(1.4426950408889634 / std::sqrt(double(dh))); }

}  // namespace

void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions,
                            const Tensor& host_positions, const Sparsity& rule, Tensor& out,
                            Tensor& lse, cudaStream_t stream) {
  constexpr const char* kOp = "attention_forward_keys";
  const AttentionShape q_shape = attention_shape(q, kOp), k_shape = attention_shape(k, kOp);
  if (q_shape.rows() == 0) return;
  const DeviceKeySet set = device_key_set(rule, q_begin, q_shape, key_positions, host_positions, kOp);
  using Cfg = SimtForwardConfig;
  const int query_tiles = (q_shape.seq + Cfg::kBlockM - 1) / Cfg::kBlockM;
  dispatch_storage(q, kOp, [&](auto tag) {
    using T = decltype(tag);
    const KeysForwardArgs<T> args{.q = cptr<T>(q),
                                  .k = cptr<T>(k),
                                  .v = cptr<T>(v),
                                  .out = ptr<T>(out),
                                  .lse = ptr<float>(lse),
                                  .q_shape = q_shape,
                                  .k_shape = k_shape,
                                  .keys = set.keys,
                                  .scale_log2 = scale_log2_of(q_shape.dh)};
    with_columns_per_lane(q_shape.dh, [&](auto columns) {
      launch_attention_kernel(attention_forward_keys_kernel<T, decltype(columns)::value>,
                              plain_tile_order(q_shape, query_tiles, kOp), Cfg::kThreads,
                              Cfg::smem_bytes(q_shape.dh), stream, args);
    });
  });
}

void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions,
                             const Tensor& host_positions, const Tensor& out, const Tensor& lse,
                             const Tensor& dout, const Sparsity& rule, Tensor& dq, Tensor& dk,
                             Tensor& dv, cudaStream_t stream) {
  constexpr const char* kOp = "attention_backward_keys";
  const AttentionShape q_shape = attention_shape(q, kOp), k_shape = attention_shape(k, kOp);
  if (q_shape.rows() == 0 || k_shape.rows() == 0) return;  // no pair: nothing to add
  const DeviceKeySet set = device_key_set(rule, q_begin, q_shape, key_positions, host_positions, kOp);
  using Cfg = SimtBackwardConfig;
  const int key_tiles = ListedBackwardPlan::of(set.keys, Cfg::kBlockN).tiles();
  if (key_tiles == 0) return;  // dense, and no key before the queries' end: no pair
  const double scale = 1.0 / std::sqrt(double(q_shape.dh));
  const Tensor delta = Tensor::empty({q.dim(0), q.dim(2), q.dim(1)}, DType::f32, Device::cuda);  // (B, H, Tq)
  dispatch_storage(q, kOp, [&](auto tag) {
    using T = decltype(tag);
    launch_attention_delta(cptr<T>(out), cptr<T>(dout), ptr<float>(delta), q_shape, stream);

    const DqAccumulator<T> dq_acc(dq, DqUpdate::accumulate, stream);

    const KeysBackwardArgs<T> args{.q = cptr<T>(q),
                                   .dout = cptr<T>(dout),
                                   .k = cptr<T>(k),
                                   .v = cptr<T>(v),
                                   .lse = cptr<float>(lse),
                                   .delta = cptr<float>(delta),
                                   .dq_acc = dq_acc.data(),
                                   .dk = ptr<T>(dk),
                                   .dv = ptr<T>(dv),
                                   .q_shape = q_shape,
                                   .k_shape = k_shape,
                                   .keys = set.keys,
                                   .scale_log2 = static_cast<float>(scale * 1.4426950408889634),
                                   .scale = static_cast<float>(scale)};
    with_columns_per_lane(q_shape.dh, [&](auto columns) {
      launch_attention_kernel(attention_backward_keys_kernel<T, decltype(columns)::value>,
                              plain_tile_order(q_shape, key_tiles, kOp), Cfg::kThreads,
                              Cfg::smem_bytes(q_shape.dh), stream, args);
    });
    dq_acc.finish(stream);
  });
}

void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse,
                     cudaStream_t stream) {
  constexpr const char* kOp = "attention_merge";
  // Any dh here (no tiles); the dims must fit the int fields of AttentionShape.
  for (int d = 0; d < 4; ++d)
    RT_REQUIRE(out.dim(d) < (std::int64_t{1} << 31), kOp, ": shape too large for the CUDA kernel: ",
               shape_str(out.shape()));
  const AttentionShape shape{static_cast<int>(out.dim(0)), static_cast<int>(out.dim(1)),
                             static_cast<int>(out.dim(2)), static_cast<int>(out.dim(3))};
  if (shape.rows() == 0 || shape.dh == 0) return;
  dispatch_storage(out, kOp, [&](auto tag) {
    using T = decltype(tag);
    attention_merge_kernel<T><<<RowLaunch::blocks(shape.rows()), RowLaunch::kThreads, 0, stream>>>(
        ptr<T>(out), ptr<float>(lse), cptr<T>(part_out), cptr<float>(part_lse), shape);
    RT_CHECK_LAUNCH();
  });
}

}  // namespace ratrain::cuda
