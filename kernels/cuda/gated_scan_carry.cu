// The gated recurrence across chunks of T on the GPU (ops.hpp, after gated_scan_backward;
// the CPU reference kernels/cpu/gated_scan_carry.cpp states the formulas, and
// parallel/sequence_scan.cpp derives them). gate (B, Tc, C), summaries (F, B, C) and carried
// states (2, B, C) f32; k, v, K, V, dK, dV, dg, dk, dv (B, Tc, C) in one storage type (bf16 or
// f32); arithmetic in fp32, as in kernels/cuda/gated_scan.cu.
//
// Work. Every chunk op runs a gate product along T: the prefix Pi_t = prod_{s<=t} a_s, or the
// suffix R_t = prod_{s>t} a_s. A block takes one batch element and a column tile of 32
// channels, lane l channel 32 tile + l (a warp reads 32 consecutive channels of a row:
// coalesced). Its kWarps warps cut the Tc rows into contiguous segments, warp w the rows
// [w L, (w + 1) L) with L = ceil(Tc / kWarps). Pass 1: each lane multiplies its segment's
// gates (the adjoint summary also sums Pi dK, Pi dV within it); the segments meet in shared
// memory. The summaries compose them there; the carry ops give each lane the product of
// the segments before (forward) or after (backward) its own, and pass 2 walks the segment
// again with the running product. The gate column of a block (Tc x 128 bytes) is read
// twice, the second time mostly from L2.
// Example: B = 1, Tc = 1024, C = 2048: grid 64 x 1, L = 64; warp 3 of block 5 holds rows
// 192..255 of channels 160..191.
// Parallelism is B ceil(C / 32) blocks, below what fills an H100 at B = 1: these are
// bandwidth passes over one chunk, and the forward fix-up is meant to be fused into the
// RoPE pass (DESIGN.md "Recurrence carry").
// The fold (n <= SP summaries) is one thread per (b, c).
#include <cstdint>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

struct CarryLaunch {
  static constexpr int kWarps = 16;  // row segments of a column tile
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kMaxBatch = 65535;  // gridDim.y
};

struct ChunkShape {
  int batch;
  std::int64_t rows;  // Tc
  int channels;
};

// A lane's channel and its warp's segment of rows.
struct LaneColumn {
  bool active;              // channel < C
  std::int64_t state;       // element (b, channel) of a (B, C) field
  std::int64_t field;       // B C, the elements of a field
  std::int64_t base;        // element (b, 0, channel) of a (B, Tc, C) tensor
  std::int64_t stride;      // C
  std::int64_t begin, end;  // the warp's rows
  __device__ std::int64_t at(std::int64_t t) const { return base + t * stride; }
};

__device__ LaneColumn lane_column(const ChunkShape& s) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int channel = blockIdx.x * 32 + lane, b = blockIdx.y;
  const std::int64_t length = (s.rows + CarryLaunch::kWarps - 1) / CarryLaunch::kWarps;
  LaneColumn c;
  c.active = channel < s.channels;
  c.state = std::int64_t{b} * s.channels + channel;
  c.field = std::int64_t{s.batch} * s.channels;
  c.base = std::int64_t{b} * s.rows * s.channels + channel;
  c.stride = s.channels;
  c.begin = min(s.rows, warp * length);
  c.end = min(s.rows, c.begin + length);
  return c;
}

// This lane's two values of a (2, B, C) state: K and V, or their adjoints.
struct Pair {
  float k, v;
};
__device__ Pair load_pair(const float* pair, const LaneColumn& col) {
  return {pair[col.state], pair[col.field + col.state]};
}

__device__ float segment_product(const float* gate, const LaneColumn& col) {
  float p = 1.0f;
  if (col.active) {
#pragma unroll 4
    for (std::int64_t t = col.begin; t < col.end; ++t) p *= gate[col.at(t)];
  }
  return p;
}

enum class Direction { forward, reverse };

// Pass 1 of the carry ops: the product of the gates of the segments before this warp's
// (forward: Pi entering the segment) or after it (reverse: R leaving it). Every thread of
// the block calls it: it holds the block barrier.
__device__ float other_segments_product(const float* gate, const LaneColumn& col, Direction dir) {
  __shared__ float products[CarryLaunch::kWarps][32];  // per segment (time order) and lane
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  products[warp][lane] = segment_product(gate, col);
  __syncthreads();
  float p = 1.0f;
  const int first = dir == Direction::forward ? 0 : warp + 1;
  const int last = dir == Direction::forward ? warp : CarryLaunch::kWarps;
  for (int w = first; w < last; ++w) p *= products[w][lane];
  return p;
}

// ---- summaries ------------------------------------------------------------------------

template <typename S>
struct SummaryArgs {
  const float* gate;  // (B, Tc, C)
  const S* K;         // (B, Tc, C)
  const S* V;         // (B, Tc, C)
  const S* dK;        // (B, Tc, C), adjoint summary only
  const S* dV;        // (B, Tc, C), adjoint summary only
  float* summary;     // (3, B, C): P, K_end, V_end; adjoint: (5, B, C): P, Z_K, Z_V, K_end, V_end
  ChunkShape shape;
};

template <typename S, bool kAdjoint>
__global__ void __launch_bounds__(CarryLaunch::kThreads) summary_kernel(const SummaryArgs<S> args) {
  __shared__ float parts[3][CarryLaunch::kWarps][32];  // per segment: P, then Z_K, Z_V
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const LaneColumn col = lane_column(args.shape);
  float p = 1.0f, z_k = 0.0f, z_v = 0.0f;  // within the segment
  if (col.active) {
#pragma unroll 4
    for (std::int64_t t = col.begin; t < col.end; ++t) {
      p *= args.gate[col.at(t)];
      if constexpr (kAdjoint) {
        z_k = __fmaf_rn(p, to_float(args.dK[col.at(t)]), z_k);
        z_v = __fmaf_rn(p, to_float(args.dV[col.at(t)]), z_v);
      }
    }
  }
  parts[0][warp][lane] = p;
  parts[1][warp][lane] = z_k;
  parts[2][warp][lane] = z_v;
  __syncthreads();
  if (warp != 0 || !col.active) return;

  // Segments in time order: Z = sum_w (prod_{w' < w} P_w') Z_w, P = prod_w P_w.
  float product = 1.0f, adjoint_k = 0.0f, adjoint_v = 0.0f;
  for (int w = 0; w < CarryLaunch::kWarps; ++w) {
    adjoint_k = __fmaf_rn(product, parts[1][w][lane], adjoint_k);
    adjoint_v = __fmaf_rn(product, parts[2][w][lane], adjoint_v);
    product *= parts[0][w][lane];
  }
  const std::int64_t last = col.at(args.shape.rows - 1);
  const int end_field = kAdjoint ? 3 : 1;
  float* out = args.summary + col.state;  // field f at out[f B C]
  out[0] = product;
  if constexpr (kAdjoint) {
    out[col.field] = adjoint_k;
    out[2 * col.field] = adjoint_v;
  }
  out[end_field * col.field] = to_float(args.K[last]);
  out[(end_field + 1) * col.field] = to_float(args.V[last]);
}

// ---- fold -----------------------------------------------------------------------------

struct Fold {
  const float* summaries;         // (n, fields, B, C)
  float* state;                   // (2, B, C)
  std::int64_t n, fields, field;  // field = B C
  bool reverse;                   // last chunk's map first
  __device__ void operator()(std::int64_t e) const {
    float k = 0.0f, v = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) {
      const float* map = summaries + (reverse ? n - 1 - i : i) * fields * field;  // P, X_K, X_V
      k = __fmaf_rn(map[e], k, map[field + e]);
      v = __fmaf_rn(map[e], v, map[2 * field + e]);
    }
    state[e] = k;
    state[field + e] = v;
  }
};

// ---- the forward carry ----------------------------------------------------------------

template <typename S>
struct ApplyCarryArgs {
  const float* gate;      // (B, Tc, C)
  const float* state_in;  // (2, B, C): K_in, V_in
  S* K;                   // (B, Tc, C), in place
  S* V;                   // (B, Tc, C), in place
  ChunkShape shape;
};

template <typename S>
__global__ void __launch_bounds__(CarryLaunch::kThreads)
    apply_carry_kernel(const ApplyCarryArgs<S> args) {
  const LaneColumn col = lane_column(args.shape);
  float prefix = other_segments_product(args.gate, col, Direction::forward);
  if (!col.active) return;
  const Pair in = load_pair(args.state_in, col);
#pragma unroll 4
  for (std::int64_t t = col.begin; t < col.end; ++t) {
    const std::int64_t at = col.at(t);
    prefix *= args.gate[at];  // Pi_t
    args.K[at] = from_float<S>(__fmaf_rn(prefix, in.k, to_float(args.K[at])));
    args.V[at] = from_float<S>(__fmaf_rn(prefix, in.v, to_float(args.V[at])));
  }
}

// ---- the backward carry ---------------------------------------------------------------

template <typename S>
struct CarryBackwardArgs {
  const float* gate;        // (B, Tc, C)
  const S* k;               // (B, Tc, C)
  const S* v;               // (B, Tc, C)
  const S* K;               // (B, Tc, C)
  const S* V;               // (B, Tc, C)
  const float* state_in;    // (2, B, C): K_in, V_in
  const float* adjoint_in;  // (2, B, C): c_K, c_V
  S* dg;                    // (B, Tc, C), in place
  S* dk;                    // (B, Tc, C), in place
  S* dv;                    // (B, Tc, C), in place
  ChunkShape shape;
};

template <typename S>
__global__ void __launch_bounds__(CarryLaunch::kThreads)
    carry_backward_kernel(const CarryBackwardArgs<S> args) {
  const LaneColumn col = lane_column(args.shape);
  float suffix = other_segments_product(args.gate, col, Direction::reverse);
  if (!col.active) return;
  const Pair in = load_pair(args.state_in, col), carry = load_pair(args.adjoint_in, col);
#pragma unroll 2
  for (std::int64_t t = col.end - 1; t >= col.begin; --t) {
    const std::int64_t at = col.at(t);
    const float a = args.gate[at];
    const float missed_k = suffix * carry.k, missed_v = suffix * carry.v;  // R_t c
    const float k_prev = t > 0 ? to_float(args.K[at - col.stride]) : 0.0f;
    const float v_prev = t > 0 ? to_float(args.V[at - col.stride]) : 0.0f;
    const float dk = __fmaf_rn(1.0f - a, missed_k, to_float(args.dk[at]));
    const float dv = __fmaf_rn(1.0f - a, missed_v, to_float(args.dv[at]));
    float dg = to_float(args.dg[at]) + a * (1.0f - a) *
                                           __fmaf_rn(missed_k, k_prev - to_float(args.k[at]),
                                                     missed_v * (v_prev - to_float(args.v[at])));
    if (t == 0) dg += a * __fmaf_rn(dk, in.k, dv * in.v);  // the entering state's term
    args.dg[at] = from_float<S>(dg);
    args.dk[at] = from_float<S>(dk);
    args.dv[at] = from_float<S>(dv);
    suffix *= a;
  }
}

// ---- host -----------------------------------------------------------------------------

ChunkShape chunk_shape(const Tensor& like, const char* op) {
  RT_REQUIRE(like.dim(0) <= CarryLaunch::kMaxBatch && like.dim(2) < (std::int64_t{1} << 31), op,
             ": the CUDA kernel takes B <= ", CarryLaunch::kMaxBatch, " and C < 2^31, got shape ",
             shape_str(like.shape()));
  return {.batch = static_cast<int>(like.dim(0)),
          .rows = like.dim(1),
          .channels = static_cast<int>(like.dim(2))};
}

dim3 grid_of(const ChunkShape& s) {
  return dim3(static_cast<unsigned>((s.channels + 31) / 32), static_cast<unsigned>(s.batch));
}

template <bool kAdjoint>
void summarise(const Tensor& gate, const Tensor* dK, const Tensor* dV, const Tensor& K,
               const Tensor& V, Tensor& summary, const char* op, cudaStream_t stream) {
  if (K.numel() == 0) return;
  const ChunkShape shape = chunk_shape(K, op);
  dispatch_storage(K, op, [&](auto tag) {
    using S = decltype(tag);
    const SummaryArgs<S> args{.gate = cptr<float>(gate),
                              .K = cptr<S>(K),
                              .V = cptr<S>(V),
                              .dK = dK ? cptr<S>(*dK) : nullptr,
                              .dV = dV ? cptr<S>(*dV) : nullptr,
                              .summary = ptr<float>(summary),
                              .shape = shape};
    summary_kernel<S, kAdjoint><<<grid_of(shape), CarryLaunch::kThreads, 0, stream>>>(args);
    RT_CHECK_LAUNCH();
  });
}

}  // namespace

void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V, Tensor& summary,
                              cudaStream_t stream) {
  summarise<false>(gate, nullptr, nullptr, K, V, summary, "gated_scan_state_summary", stream);
}

void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary,
                                cudaStream_t stream) {
  summarise<true>(gate, &dK, &dV, K, V, summary, "gated_scan_adjoint_summary", stream);
}

void gated_scan_fold(const Tensor& summaries, ops::FoldOrder order, Tensor& state,
                     cudaStream_t stream) {
  const std::int64_t field = state.dim(1) * state.dim(2);
  launch_elementwise(Fold{.summaries = cptr<float>(summaries),
                          .state = ptr<float>(state),
                          .n = summaries.dim(0),
                          .fields = summaries.dim(1),
                          .field = field,
                          .reverse = order == ops::FoldOrder::last_to_first},
                     field, stream);
}

void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V,
                            cudaStream_t stream) {
  if (K.numel() == 0) return;
  const ChunkShape shape = chunk_shape(K, "gated_scan_apply_carry");
  dispatch_storage(K, "gated_scan_apply_carry", [&](auto tag) {
    using S = decltype(tag);
    const ApplyCarryArgs<S> args{.gate = cptr<float>(gate),
                                 .state_in = cptr<float>(state_in),
                                 .K = ptr<S>(K),
                                 .V = ptr<S>(V),
                                 .shape = shape};
    apply_carry_kernel<S><<<grid_of(shape), CarryLaunch::kThreads, 0, stream>>>(args);
    RT_CHECK_LAUNCH();
  });
}

void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv,
                               cudaStream_t stream) {
  if (k.numel() == 0) return;
  const ChunkShape shape = chunk_shape(k, "gated_scan_carry_backward");
  dispatch_storage(k, "gated_scan_carry_backward", [&](auto tag) {
    using S = decltype(tag);
    const CarryBackwardArgs<S> args{.gate = cptr<float>(gate),
                                    .k = cptr<S>(k),
                                    .v = cptr<S>(v),
                                    .K = cptr<S>(K),
                                    .V = cptr<S>(V),
                                    .state_in = cptr<float>(state_in),
                                    .adjoint_in = cptr<float>(adjoint_in),
                                    .dg = ptr<S>(dg),
                                    .dk = ptr<S>(dk),
                                    .dv = ptr<S>(dv),
                                    .shape = shape};
    carry_backward_kernel<S><<<grid_of(shape), CarryLaunch::kThreads, 0, stream>>>(args);
    RT_CHECK_LAUNCH();
  });
}

}  // namespace ratrain::cuda
