// Gated linear recurrence on the GPU (RATPLUS.md step 4; the CPU reference is
// kernels/cpu/gated_scan.cpp). g, k, v, K, V and their gradients (B, T, C) in one storage
// type (bf16 or f32); gate (B, T, C) f32; state and arithmetic fp32:
//   a_t = sigmoid(g_t),  K_t = a_t K_{t-1} + (1 - a_t) k_t,  V_t likewise,  K_{-1} = V_{-1} = 0,
// along T, independently per (batch, channel). Backward, in reverse time (c_T = 0):
//   A_t = dK_t + c_{t+1},  c_t = a_t A_t,  dk_t = (1 - a_t) A_t,
//   dg_t = a_t (1 - a_t) (A_t (K_{t-1} - k_t) + A'_t (V_{t-1} - v_t))   (A': A of V).
//
// Why a scan along T: B*C lanes (2048 at B = 1) cannot fill 132 SMs. T is cut into chunks;
// a tile (one chunk x kChannels channels of one batch element) is one block, and the
// whole op is one pass over memory: decoupled look-back (Merrill & Garland, "Single-pass
// Parallel Prefix Scan with Decoupled Look-back", 2016), made deterministic.
//
// Affine summaries. A stretch of rows maps the state s entering it to P s + X, with P the
// product of its gates and X the stretch scanned from a zero state (K and V share P).
// "(P1, X1) then (P2, X2)" is (P2 P1, P2 X1 + X2). The backward carry c obeys the same
// form in reverse time (c <- a (dK + c)), with the same P: one machinery serves both.
//
// A block: kDataWarps data warps and one look-back warp. Data warp w holds rows
// [w kRows, (w+1) kRows) of the tile in registers, its lane l the kVec channels from
// l kVec (consecutive lanes, consecutive channels: coalesced). Each lane summarises its
// rows; the summaries meet in shared memory; the look-back warp folds them into the
// tile's summary and resolves the tile's incoming state while the data warps fold the
// segments before their own; then every data lane rescans its rows from the true state
// and writes the outputs. The look-back warp holds no rows, so its registers do not add
// to the data warps' (registers are allocated per kernel, for the hungriest path).
//
// Across blocks. Tiles are handed out by an atomic ticket in scan order (every column of
// the first chunk, then of the next, ...), so a tile only waits on tiles held by blocks
// that are running or done: no deadlock, whatever order the hardware starts blocks in. A
// tile publishes its summary ("aggregate") unless its incoming state is already at hand,
// finds the nearest predecessor whose outgoing state is published ("inclusive"), and
// folds the aggregates in between in scan order, oldest first (carry = P_m carry + X_m):
// the same fma each of those tiles used for its own outgoing state. By induction each
// tile's carry is bitwise the same wherever its look-back stopped, so results are
// deterministic run to run although look-back depths depend on timing.
// Example, bf16 forward (W = 64 channels, L = 128 rows), B = 1, T = 4096, C = 2048: 32
// column tiles x 32 chunks; ticket 70 is order 70 / 32 = 2, column 70 % 32 = 6, i.e. rows
// 256..383 and channels 384..447, and its predecessor is ticket 70 - 32 = 38. Backward,
// order 2 is chunk 32 - 1 - 2 = 29 (the scan runs from the end of T).
// Scratch: one status word per tile (zeroed by a memset before the launch) and records of
// 5 floats per channel of a tile, 20 bytes against the tile's 128 x 14 bytes of data per
// channel (bf16 forward): ~1% of the traffic.
//
// Memory ordering. A record is written by the 32 lanes of the look-back warp; each
// fences (__threadfence), the warp synchronises, lane 0 stores the status with release
// semantics. A reader's lanes acquire the status words, the warp synchronises, and the
// records are read through L2 (__ldcg), never from a stale L1 line.
//
// RoPE in the same pass (gated_scan_rope_forward / _backward, RATPLUS.md step 5): the
// forward rotates the recurrent keys K in fp32 as it writes them (k_rope) and q while its
// tile waits on its look-back; the backward rotates dk_rope back into dK as it loads it,
// and dq_rope into dq after its outputs (no registers to spare before). Rotate-half pairs
// channel c with c + dh/2, so such a tile holds 32 channels of each half of one head:
// lanes 0-15 two channels each of the first half, lanes 16-31 the matching ones of the
// second, and a lane's partner is lane ^ 16 (one shuffle). Example, dh = 128: column tile 3 is head 1, part 1: lane 5 holds channels
// 128 + 32 + 10 = 170, 171 and lane 21 holds 234, 235. The plain scan tiles 64 consecutive
// channels. Needs dh % 64 == 0 and the two-channel vectors; else the op runs the scan and
// RoPE kernels one after the other.
//
// Backward precision. K_{t-1} enters dg. Rather than read K (rounded to bf16 by the
// forward) at every row, the backward reads K, V only at the row before its tile and
// recomputes fp32 states inside the tile from gate, k, v: the rounding of that one row
// decays with the gates along the tile, and K, V cost 1/kLength of their bytes. The first
// tile has no row before it and reads K, V at every row instead: the stored states may
// carry an entering state (sequence parallelism) that no recomputation from zero knows.
#include <cuda/atomic>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <numbers>
#include <type_traits>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

enum class Direction { forward, reverse };

struct ScanLaunch {
  static constexpr int kDataWarps = 8;  // row segments of a tile
  static constexpr int kLookbackWarp = kDataWarps;
  static constexpr int kThreads = 32 * (kDataWarps + 1);
  static constexpr int kVec = 2;              // channels per lane: 4 B (bf16), 8 B (f32) accesses
  static constexpr unsigned kBackoffNs = 32;  // pause between look-back probes
};

// Rows per lane, and the blocks per SM the register budget is cut for (ptxas -v, sm_90a,
// kVec = 2, in the order below: 92, 72, 94 and 72 registers, no spills). A data lane
// keeps its rows in registers until the tile's incoming state is known: forward the gate
// (f32) and k, v; backward gate, k, v, dK, dV, then two fp32 differences per row. Longer
// tiles mean fewer tiles along T, so shallower look-backs and fewer records.
template <typename S, Direction kDir>
struct ScanTuning;
template <>
struct ScanTuning<__nv_bfloat16, Direction::forward> {
  static constexpr int kRows = 16, kMinBlocks = 2;
};
template <>
struct ScanTuning<float, Direction::forward> {
  static constexpr int kRows = 8, kMinBlocks = 3;
};
template <>
struct ScanTuning<__nv_bfloat16, Direction::reverse> {
  static constexpr int kRows = 8, kMinBlocks = 2;
};
template <>
struct ScanTuning<float, Direction::reverse> {
  static constexpr int kRows = 4, kMinBlocks = 3;
};

template <int kVec, int kRows>
struct TileShape {
  static constexpr int kChannels = 32 * kVec;                     // W
  static constexpr int kLength = ScanLaunch::kDataWarps * kRows;  // L, rows
};

// Status of a tile's look-back records.
enum Status : unsigned { kEmpty = 0, kAggregate = 1, kInclusive = 2 };

// Scratch of one launch; a tile's records are indexed by its ticket.
struct LookbackState {
  unsigned* next_ticket;  // (1), zeroed before the launch
  unsigned* status;       // (tiles), zeroed before the launch
  float* aggregate;       // (tiles, 3, W): P, X_K, X_V of the tile alone
  float* inclusive;       // (tiles, 2, W): the two states after the tile
};

struct ScanShape {
  int batch;
  std::int64_t seq;
  int channels;
  int column_tiles;  // ceil(C / W)
  int chunks;        // ceil(T / L)
};

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// N values of storage type S as loaded, read as fp32 through operator[]. A bf16 pair stays
// packed in one 32-bit register (a struct of two bf16 would spend a register on each).
template <typename S, int N>
struct alignas(sizeof(S) * N) Packed {
  static_assert(std::is_same_v<S, float>);
  float v[N];
  __device__ float operator[](int e) const { return v[e]; }
};
template <int N>
struct alignas(2 * N) Packed<__nv_bfloat16, N> {
  static_assert(N == 1 || N % 2 == 0);
  using Word = std::conditional_t<N == 1, unsigned short, unsigned>;
  Word w[(N + 1) / 2];
  __device__ float operator[](int e) const {  // a bf16 is the high half of an f32
    const unsigned bits = w[e / 2];
    return __uint_as_float(N == 1 || e % 2 == 0 ? bits << 16 : bits & 0xffff0000u);
  }
};

template <typename S, int N>
__device__ Packed<S, N> load_packed(const S* p) {
  return *reinterpret_cast<const Packed<S, N>*>(p);
}
template <typename T, int N>
__device__ void store_vec(T* p, const Vec<T, N>& x) {
  *reinterpret_cast<Vec<T, N>*>(p) = x;
}

// Look-back records of other blocks go through L2: __ldcg / __stcg.
template <int N>
__device__ Vec<float, N> load_record(const float* p) {
  Vec<float, N> out;
  if constexpr (N == 2) {
    const float2 x = __ldcg(reinterpret_cast<const float2*>(p));
    out.v[0] = x.x, out.v[1] = x.y;
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) out.v[e] = __ldcg(p + e);
  }
  return out;
}
template <int N>
__device__ void store_record(float* p, const Vec<float, N>& x) {
  if constexpr (N == 2) {
    __stcg(reinterpret_cast<float2*>(p), make_float2(x.v[0], x.v[1]));
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) __stcg(p + e, x.v[e]);
  }
}

// Fast exp and an IEEE reciprocal: ~1e-7 relative error for |g| < 10, far inside the
// tests' tolerances, at a fraction of expf and a division. Saturates cleanly: g -> -inf
// gives rcp(inf) = 0, g -> +inf gives 1.
__device__ inline float sigmoid(float x) { return __frcp_rn(1.0f + __expf(-x)); }
// One step of the recurrence: a s + (1 - a) x.
__device__ inline float step(float a, float s, float x) { return __fmaf_rn(a, s, (1.0f - a) * x); }

// Affine summary s -> p s + x of a stretch of rows, per channel of a lane, for the two
// states (K and V, or their adjoint carries) that share the gate product p.
template <int kVec>
struct Summary {
  Vec<float, kVec> p;
  Vec<float, kVec> x[2];
  __device__ static Summary identity() {
    Summary s;
#pragma unroll
    for (int e = 0; e < kVec; ++e) s.p.v[e] = 1.0f, s.x[0].v[e] = 0.0f, s.x[1].v[e] = 0.0f;
    return s;
  }
  // This stretch followed by `next`.
  __device__ Summary then(const Summary& next) const {
    Summary s;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      s.p.v[e] = next.p.v[e] * p.v[e];
      s.x[0].v[e] = __fmaf_rn(next.p.v[e], x[0].v[e], next.x[0].v[e]);
      s.x[1].v[e] = __fmaf_rn(next.p.v[e], x[1].v[e], next.x[1].v[e]);
    }
    return s;
  }
  // The two states after the stretch, entered with `in`: the one fma of the determinism
  // argument.
  __device__ void apply(const Vec<float, kVec> (&in)[2], Vec<float, kVec> (&out)[2]) const {
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      out[0].v[e] = __fmaf_rn(p.v[e], in[0].v[e], x[0].v[e]);
      out[1].v[e] = __fmaf_rn(p.v[e], in[1].v[e], x[1].v[e]);
    }
  }
};

// Shared memory of a block: per data warp (time order) and lane, the gate product and
// kX summary states (forward: X_K, X_V; backward: those, then the reverse carries).
template <int kVec, int kX>
struct Segments {
  Vec<float, kVec> p[ScanLaunch::kDataWarps][32];
  Vec<float, kVec> x[kX][ScanLaunch::kDataWarps][32];

  __device__ void store(int x_first, int warp, int lane, const Summary<kVec>& s) {
    p[warp][lane] = s.p;
    x[x_first][warp][lane] = s.x[0];
    x[x_first + 1][warp][lane] = s.x[1];
  }
  __device__ Summary<kVec> load(int x_first, int warp, int lane) const {
    Summary<kVec> s;
    s.p = p[warp][lane];
    s.x[0] = x[x_first][warp][lane];
    s.x[1] = x[x_first + 1][warp][lane];
    return s;
  }
  // Summary of the first `count` segments in scan order (reverse: from the last warp).
  __device__ Summary<kVec> prefix(int x_first, int count, Direction dir, int lane) const {
    Summary<kVec> s = Summary<kVec>::identity();
    // Rolled: unrolled, the compiler loads all segments up front, ~6 kVec registers each.
#pragma unroll 1
    for (int q = 0; q < count; ++q)
      s = s.then(load(x_first, dir == Direction::forward ? q : ScanLaunch::kDataWarps - 1 - q,
                      lane));
    return s;
  }
};

struct TilePlace {
  unsigned ticket;
  unsigned columns;  // tiles per chunk, B * column_tiles: the ticket distance to a predecessor
  int order;         // the chunk's position in scan order
  int batch;
  int column_tile;
  int chunk;         // the chunk's position along T
};

// Hands this block the next tile in scan order (thread 0 takes the ticket).
__device__ TilePlace claim_tile(const ScanShape& shape, unsigned* next_ticket, Direction dir,
                                unsigned& shared_ticket) {
  if (threadIdx.x == 0) shared_ticket = atomicAdd(next_ticket, 1u);
  __syncthreads();
  TilePlace t;
  t.ticket = shared_ticket;
  t.columns = static_cast<unsigned>(shape.batch) * shape.column_tiles;
  t.order = static_cast<int>(t.ticket / t.columns);
  const unsigned column = t.ticket % t.columns;
  t.batch = static_cast<int>(column / shape.column_tiles);
  t.column_tile = static_cast<int>(column % shape.column_tiles);
  t.chunk = dir == Direction::forward ? t.order : shape.chunks - 1 - t.order;
  return t;
}

// ---- RoPE in the scan (the header's "RoPE in the same pass") -------------------------

struct RopeArgs {
  static constexpr int kMaxHalf = 128;  // dh <= 256: the table below is 1 KB of parameters
  int head_dim = 0;  // dh, a multiple of 64; 0 in the plain scan
  std::int64_t position_offset = 0;
  // One position's angle of frequency i in half turns, base^(-2i/dh) / pi, formed on the
  // host in double: a double exp2 per lane would cost the kernel registers it has not got.
  double turn[kMaxHalf] = {};
};

// A lane's first channel in a RoPE tile: 16 lanes on each half of one head.
__device__ inline int paired_channel(int column_tile, int lane, int head_dim) {
  const int parts = head_dim / 64;  // tiles per head
  const int head = column_tile / parts, part = column_tile % parts;
  return head * head_dim + (lane / 16) * (head_dim / 2) + part * 32 + (lane % 16) * 2;
}

// The rotation of a lane's kVec channels, row after row. Row 0's angle p base^(-2i/dh) is
// formed in double, in half turns (theta / pi), and reduced to [-1, 1] half turns there
// (positions reach 1M+, where fp32 p * inv_freq is ~0.06 rad off); sincospif of the
// reduced value needs no large-argument path (sincosf's keeps a stack array: spills here).
// Each next row turns the angle by one position's (angle addition, fp32), which drifts by
// a few ulp over a lane's <= 16 rows.
template <int kVec>
struct RowRotation {
  float cos_[kVec], sin_[kVec], step_cos[kVec], step_sin[kVec];
  float sign;  // of the partner's term: first half -1, second half +1; negated for R^T

  RowRotation() = default;
  // direction +1: R (forward); -1: R^T (backward).
  __device__ RowRotation(const RopeArgs& rope, int channel, std::int64_t position, int lane,
                         float direction) {
    sign = lane < 16 ? -direction : direction;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const double turn = rope.turn[channel % (rope.head_dim / 2) + e];
      const double half_turns = static_cast<double>(position) * turn;
      const double reduced = half_turns - 2.0 * rint(0.5 * half_turns);  // [-1, 1]
      sincospif(static_cast<float>(reduced), &sin_[e], &cos_[e]);
      sincospif(static_cast<float>(turn), &step_sin[e], &step_cos[e]);
    }
  }
  __device__ void next_row() {
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const float c = cos_[e];
      cos_[e] = __fmaf_rn(c, step_cos[e], -sin_[e] * step_sin[e]);
      sin_[e] = __fmaf_rn(sin_[e], step_cos[e], c * step_sin[e]);
    }
  }
  // One row of the lane's values, rotated; the partner's come from lane ^ 16. Every lane
  // of the warp calls it (a row exists for all of a warp's lanes or for none).
  __device__ Vec<float, kVec> rotated(const Vec<float, kVec>& x) const {
    Vec<float, kVec> y;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const float partner = __shfl_xor_sync(0xffffffffu, x.v[e], 16);
      y.v[e] = __fmaf_rn(x.v[e], cos_[e], sign * partner * sin_[e]);
    }
    return y;
  }
};

template <typename S, int N>
__device__ Vec<float, N> unpacked(const Packed<S, N>& x) {
  Vec<float, N> out;
#pragma unroll
  for (int e = 0; e < N; ++e) out.v[e] = x[e];
  return out;
}
template <typename S, int N>
__device__ Vec<S, N> rounded(const Vec<float, N>& x) {
  Vec<S, N> out;
#pragma unroll
  for (int e = 0; e < N; ++e) out.v[e] = from_float<S>(x.v[e]);
  return out;
}
template <typename S, int N>
__device__ Packed<S, N> packed(const Vec<float, N>& x) {
  static_assert(sizeof(Packed<S, N>) == sizeof(Vec<S, N>));
  const Vec<S, N> r = rounded<S>(x);
  Packed<S, N> out;
  memcpy(&out, &r, sizeof out);
  return out;
}

// Where a data lane's rows start and how many of its kRows exist (0 past C or T).
struct LaneRows {
  std::int64_t offset;  // element offset of its first row's first channel
  std::int64_t t;       // its first row's position along T
  int channel;          // its first channel
  int count;
};

// kRope: the channels of a RoPE tile (head_dim > 0), else kChannels consecutive ones.
template <int kVec, int kRows, bool kRope>
__device__ LaneRows lane_rows(const ScanShape& shape, const TilePlace& place, int warp, int lane,
                              int head_dim) {
  using Tile = TileShape<kVec, kRows>;
  const int channel = kRope ? paired_channel(place.column_tile, lane, head_dim)
                            : place.column_tile * Tile::kChannels + lane * kVec;
  const std::int64_t t = std::int64_t{place.chunk} * Tile::kLength + std::int64_t{warp} * kRows;
  const std::int64_t left = shape.seq - t;
  LaneRows r;
  r.offset = (place.batch * shape.seq + t) * shape.channels + channel;
  r.t = t;
  r.channel = channel;
  r.count = channel >= shape.channels || left <= 0
                ? 0
                : static_cast<int>(left < kRows ? left : kRows);
  return r;
}

// ---- look-back (run by the look-back warp, all 32 lanes) ----------------------------

__device__ inline unsigned load_status(unsigned* p) {
  return ::cuda::atomic_ref<unsigned, ::cuda::thread_scope_device>(*p).load(
      ::cuda::memory_order_acquire);
}

// Lane l reads the status of the predecessor at distance l + 1; a distance past the first
// chunk counts as an inclusive zero state. Returns the distance of the nearest inclusive
// predecessor if every closer one has published its aggregate, else 0.
__device__ int probe_predecessors(const LookbackState& lb, const TilePlace& place, int lane) {
  unsigned s = kInclusive;
  if (lane < place.order) s = load_status(lb.status + (place.ticket - (lane + 1u) * place.columns));
  const unsigned inclusive = __ballot_sync(0xffffffffu, s == kInclusive);
  const unsigned empty = __ballot_sync(0xffffffffu, s == kEmpty);
  if (inclusive == 0) return 0;
  const int nearest = __ffs(static_cast<int>(inclusive));  // 1..32
  const unsigned closer = (1u << (nearest - 1)) - 1u;      // lanes of the distances below
  return (empty & closer) != 0 ? 0 : nearest;
}

// Writes this lane's channels of the record's kFields rows, then lane 0 the status.
template <int kVec, int kFields>
__device__ void publish(float* record, const Vec<float, kVec> (&fields)[kFields], unsigned* status,
                        Status value, int lane) {
#pragma unroll
  for (int f = 0; f < kFields; ++f) store_record(record + (f * 32 + lane) * kVec, fields[f]);
  __threadfence();
  __syncwarp();
  if (lane == 0)
    ::cuda::atomic_ref<unsigned, ::cuda::thread_scope_device>(*status).store(
        value, ::cuda::memory_order_release);
}

// The states entering the tile (this lane's channels), given the tile's summary and the
// result of a probe made while the data warps loaded. Publishes the tile's aggregate if
// the probe did not resolve, and its inclusive states in any case.
template <int kVec>
__device__ void look_back(const LookbackState& lb, const TilePlace& place,
                          const Summary<kVec>& tile, int nearest, int lane,
                          Vec<float, kVec> (&carry)[2]) {
  constexpr int kW = 32 * kVec;
  if (nearest == 0) {  // our summary lets the tiles behind us skip ours while we wait
    const Vec<float, kVec> fields[3] = {tile.p, tile.x[0], tile.x[1]};
    publish<kVec, 3>(lb.aggregate + std::size_t{place.ticket} * 3 * kW, fields,
                     lb.status + place.ticket, kAggregate, lane);
    do {
      __nanosleep(ScanLaunch::kBackoffNs);
      nearest = probe_predecessors(lb, place, lane);
    } while (nearest == 0);
  }
  __syncwarp();  // every lane's status acquire before any lane's record read

  if (nearest <= place.order) {
    const float* rec = lb.inclusive + std::size_t{place.ticket - nearest * place.columns} * 2 * kW;
    carry[0] = load_record<kVec>(rec + lane * kVec);
    carry[1] = load_record<kVec>(rec + kW + lane * kVec);
  } else {
    carry[0] = carry[1] = Vec<float, kVec>{};
  }
  // Oldest first, each step the fma by which that tile computed its inclusive states.
#pragma unroll 4
  for (int d = nearest - 1; d >= 1; --d) {
    const float* rec = lb.aggregate + std::size_t{place.ticket - d * place.columns} * 3 * kW;
    Summary<kVec> m;
    m.p = load_record<kVec>(rec + lane * kVec);
    m.x[0] = load_record<kVec>(rec + kW + lane * kVec);
    m.x[1] = load_record<kVec>(rec + 2 * kW + lane * kVec);
    const Vec<float, kVec> in[2] = {carry[0], carry[1]};
    m.apply(in, carry);
  }
  Vec<float, kVec> out[2];
  tile.apply(carry, out);
  publish<kVec, 2>(lb.inclusive + std::size_t{place.ticket} * 2 * kW, out,
                   lb.status + place.ticket, kInclusive, lane);
}

// Barriers 1 (segment summaries stored) and 2 (carry_in ready) of a tile, met by the
// look-back warp and the data warps at their own call sites (each warp once, converged):
// keeping the roles apart keeps the data warps' rows out of the look-back path's register
// count. __syncthreads is bar.sync, PTX's .aligned form, which wants every thread of the
// block at the same instruction; the plain form counts arrivals wherever they come from.
__device__ inline void role_barrier() { asm volatile("barrier.sync 0;" ::: "memory"); }

// The look-back warp's whole part in a tile, between barriers 1 and 2.
template <int kVec, int kX>
__device__ void look_back_role(const Segments<kVec, kX>& seg, int x_first, Direction dir,
                               const LookbackState& lb, const TilePlace& place,
                               Vec<float, kVec> (&carry_in)[2][32], int lane) {
  const int nearest = probe_predecessors(lb, place, lane);  // overlaps the data warps' loads
  role_barrier();  // 1
  const Summary<kVec> tile = seg.prefix(x_first, ScanLaunch::kDataWarps, dir, lane);
  Vec<float, kVec> carry[2];
  look_back(lb, place, tile, nearest, lane, carry);
  carry_in[0][lane] = carry[0];
  carry_in[1][lane] = carry[1];
  role_barrier();  // 2
}

// Writes the lane's rows of `in`, rotated, to `out`: q into q_rope (forward), dq_rope into
// dq (backward). Run while the tile waits on its look-back. `rot` is taken by value: it
// advances row by row here.
template <typename S, int kVec, int kRows>
__device__ void rotate_rows(const S* in, S* out, const LaneRows& rows, int stride,
                            RowRotation<kVec> rot) {
  Packed<S, kVec> x[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    if (r < rows.count) x[r] = load_packed<S, kVec>(in + rows.offset + r * stride);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
      store_vec(out + rows.offset + r * stride, rounded<S>(rot.rotated(unpacked(x[r]))));
      rot.next_row();
    }
  }
}

// ---- forward --------------------------------------------------------------------------

template <typename S>
struct ForwardArgs {
  const S* g;   // (B, T, C)
  const S* k;   // (B, T, C)
  const S* v;   // (B, T, C)
  float* gate;  // (B, T, C)
  S* K;         // (B, T, C)
  S* V;         // (B, T, C)
  // RoPE in the same pass (kRope): q in, q_rope = R q and k_rope = R K out, (B, T, C).
  const S* q;
  S* q_rope;
  S* k_rope;
  RopeArgs rope;
  ScanShape shape;
  LookbackState lookback;
};

template <typename S, int kVec, int kRows, int kMinBlocks, bool kRope>
__global__ void __launch_bounds__(ScanLaunch::kThreads, kMinBlocks)
    gated_scan_forward_kernel(const ForwardArgs<S> args) {
  __shared__ Segments<kVec, 2> seg;               // per data warp: P, X_K, X_V
  __shared__ Vec<float, kVec> carry_in[2][32];    // K, V entering the tile, per lane
  __shared__ unsigned ticket;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const TilePlace place =
      claim_tile(args.shape, args.lookback.next_ticket, Direction::forward, ticket);
  if (warp == ScanLaunch::kLookbackWarp) {
    look_back_role(seg, 0, Direction::forward, args.lookback, place, carry_in, lane);
    return;
  }
  const LaneRows rows = lane_rows<kVec, kRows, kRope>(args.shape, place, warp, lane,
                                                      args.rope.head_dim);
  const int stride = args.shape.channels;  // (kRows - 1) C < 2^31: 32-bit row offsets

  // This lane's rows, kept until the carry is known: g, k, v as loaded. The gate is
  // formed twice (summary, then outputs; the same bits) rather than kept in fp32: a bf16
  // pair of g is one register, its gates two.
  Packed<S, kVec> g[kRows], k[kRows], v[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
      g[r] = load_packed<S, kVec>(args.g + rows.offset + r * stride);
      k[r] = load_packed<S, kVec>(args.k + rows.offset + r * stride);
      v[r] = load_packed<S, kVec>(args.v + rows.offset + r * stride);
    }
  }
  Summary<kVec> own = Summary<kVec>::identity();
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float a = sigmoid(g[r][e]);
        own.p.v[e] *= a;
        own.x[0].v[e] = step(a, own.x[0].v[e], k[r][e]);
        own.x[1].v[e] = step(a, own.x[1].v[e], v[r][e]);
      }
    }
  }
  seg.store(0, warp, lane, own);
  role_barrier();  // 1
  const Summary<kVec> prefix = seg.prefix(0, warp, Direction::forward, lane);
  if constexpr (kRope) {  // q while the look-back runs
    const RowRotation<kVec> rotation(args.rope, rows.channel, args.rope.position_offset + rows.t,
                                     lane, 1.0f);
    rotate_rows<S, kVec, kRows>(args.q, args.q_rope, rows, stride, rotation);
  }
  role_barrier();  // 2

  const Vec<float, kVec> entering[2] = {carry_in[0][lane], carry_in[1][lane]};
  Vec<float, kVec> state[2];
  prefix.apply(entering, state);
  // Formed again rather than kept across the barrier: the registers are the scarcer.
  [[maybe_unused]] RowRotation<kVec> key_rotation =
      kRope ? RowRotation<kVec>(args.rope, rows.channel, args.rope.position_offset + rows.t,
                                lane, 1.0f)
            : RowRotation<kVec>{};
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
      Vec<float, kVec> a;
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        a.v[e] = sigmoid(g[r][e]);
        state[0].v[e] = step(a.v[e], state[0].v[e], k[r][e]);
        state[1].v[e] = step(a.v[e], state[1].v[e], v[r][e]);
      }
      store_vec(args.gate + rows.offset + r * stride, a);
      store_vec(args.K + rows.offset + r * stride, rounded<S>(state[0]));
      store_vec(args.V + rows.offset + r * stride, rounded<S>(state[1]));
      if constexpr (kRope) {  // rotated from the fp32 state, not from the rounded K
        store_vec(args.k_rope + rows.offset + r * stride,
                  rounded<S>(key_rotation.rotated(state[0])));
        key_rotation.next_row();
      }
    }
  }
}

// ---- backward -------------------------------------------------------------------------

template <typename S>
struct BackwardArgs {
  const float* gate;  // (B, T, C)
  const S* k;         // (B, T, C)
  const S* v;         // (B, T, C)
  const S* K;         // (B, T, C), read at the row before each tile only
  const S* V;         // (B, T, C), likewise
  const S* dK;        // (B, T, C)
  const S* dV;        // (B, T, C)
  S* dg;              // (B, T, C)
  S* dk;              // (B, T, C)
  S* dv;              // (B, T, C)
  // RoPE in the same pass (kRope): dK above is dk_rope, turned into dK = R^T dk_rope as it
  // is loaded; dq = R^T dq_rope, (B, T, C).
  const S* dq_rope;
  S* dq;
  RopeArgs rope;
  ScanShape shape;
  LookbackState lookback;
};

template <typename S, int kVec, int kRows, int kMinBlocks, bool kRope>
__global__ void __launch_bounds__(ScanLaunch::kThreads, kMinBlocks)
    gated_scan_backward_kernel(const BackwardArgs<S> args) {
  // Per data warp: P, the forward X_K, X_V (x[0..1]) and the reverse carries (x[2..3]).
  __shared__ Segments<kVec, 4> seg;
  __shared__ Vec<float, kVec> carry_in[2][32];  // adjoint carries entering the tile (from T's end)
  __shared__ unsigned ticket;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const TilePlace place =
      claim_tile(args.shape, args.lookback.next_ticket, Direction::reverse, ticket);
  if (warp == ScanLaunch::kLookbackWarp) {
    look_back_role(seg, 2, Direction::reverse, args.lookback, place, carry_in, lane);
    return;
  }
  const LaneRows rows = lane_rows<kVec, kRows, kRope>(args.shape, place, warp, lane,
                                                      args.rope.head_dim);
  const int stride = args.shape.channels;  // (kRows - 1) C < 2^31: 32-bit row offsets

  Packed<float, kVec> a[kRows];
  Packed<S, kVec> k[kRows], v[kRows], dK[kRows], dV[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
      a[r] = load_packed<float, kVec>(args.gate + rows.offset + r * stride);
      k[r] = load_packed<S, kVec>(args.k + rows.offset + r * stride);
      v[r] = load_packed<S, kVec>(args.v + rows.offset + r * stride);
      dK[r] = load_packed<S, kVec>(args.dK + rows.offset + r * stride);
      dV[r] = load_packed<S, kVec>(args.dV + rows.offset + r * stride);
    }
  }
  if constexpr (kRope) {  // dK = R^T dk_rope, rounded to S as the separate RoPE kernel does
    RowRotation<kVec> key_rotation(args.rope, rows.channel, args.rope.position_offset + rows.t,
                                   lane, -1.0f);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r < rows.count) {
        dK[r] = packed<S>(key_rotation.rotated(unpacked(dK[r])));
        key_rotation.next_row();
      }
    }
  }
  // The forward states entering the tile: the stored K, V of the row before it.
  Vec<float, kVec> tile_state[2] = {};
  const std::int64_t tile_row = std::int64_t{place.chunk} * TileShape<kVec, kRows>::kLength;
  if (rows.count > 0 && tile_row > 0) {
    const std::int64_t before = rows.offset - (std::int64_t{warp} * kRows + 1) * stride;
    const Packed<S, kVec> K0 = load_packed<S, kVec>(args.K + before);
    const Packed<S, kVec> V0 = load_packed<S, kVec>(args.V + before);
#pragma unroll
    for (int e = 0; e < kVec; ++e) tile_state[0].v[e] = K0[e], tile_state[1].v[e] = V0[e];
  }

  Summary<kVec> fwd = Summary<kVec>::identity();  // in time order, from a zero state
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        fwd.p.v[e] *= a[r][e];
        fwd.x[0].v[e] = step(a[r][e], fwd.x[0].v[e], k[r][e]);
        fwd.x[1].v[e] = step(a[r][e], fwd.x[1].v[e], v[r][e]);
      }
    }
  }
  Summary<kVec> rev = Summary<kVec>::identity();  // in reverse time order, from a zero carry
#pragma unroll
  for (int r = kRows - 1; r >= 0; --r) {
    if (r < rows.count) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        rev.x[0].v[e] = a[r][e] * (dK[r][e] + rev.x[0].v[e]);
        rev.x[1].v[e] = a[r][e] * (dV[r][e] + rev.x[1].v[e]);
      }
    }
  }
  rev.p = fwd.p;
  seg.store(0, warp, lane, fwd);
  seg.store(2, warp, lane, rev);
  role_barrier();  // 1

  // While the look-back runs: forward states through this lane's rows, keeping
  // K_{t-1} - k_t and V_{t-1} - v_t for dg, and the reverse summary of the later segments.
  Vec<float, kVec> diff[2][kRows];
  Vec<float, kVec> state[2];
  seg.prefix(0, warp, Direction::forward, lane).apply(tile_state, state);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r < rows.count) {
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        diff[0][r].v[e] = state[0].v[e] - k[r][e];
        diff[1][r].v[e] = state[1].v[e] - v[r][e];
        state[0].v[e] = step(a[r][e], state[0].v[e], k[r][e]);
        state[1].v[e] = step(a[r][e], state[1].v[e], v[r][e]);
      }
    }
  }
  if (tile_row == 0) {
    // The first tile takes K_{t-1}, V_{t-1} as stored (K_{-1} = 0), as the CPU reference
    // does: a chunk of a sequence-parallel scan enters with a carried state that K, V hold
    // (gated_scan_apply_carry) and the recomputation from zero above would miss
    // (parallel/sequence_scan.cpp); later tiles start from the stored row before them.
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows.count) continue;
      const bool first_row = warp == 0 && r == 0;  // t = 0
      const std::int64_t previous = rows.offset + std::int64_t{r - 1} * stride;
      // A value-initialised Packed reads as zeros: K_{-1} = V_{-1} = 0.
      const Packed<S, kVec> K_prev =
          first_row ? Packed<S, kVec>{} : load_packed<S, kVec>(args.K + previous);
      const Packed<S, kVec> V_prev =
          first_row ? Packed<S, kVec>{} : load_packed<S, kVec>(args.V + previous);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        diff[0][r].v[e] = K_prev[e] - k[r][e];
        diff[1][r].v[e] = V_prev[e] - v[r][e];
      }
    }
  }
  const Summary<kVec> rev_prefix =
      seg.prefix(2, ScanLaunch::kDataWarps - 1 - warp, Direction::reverse, lane);
  role_barrier();  // 2

  const Vec<float, kVec> entering[2] = {carry_in[0][lane], carry_in[1][lane]};
  Vec<float, kVec> carry[2];
  rev_prefix.apply(entering, carry);
#pragma unroll
  for (int r = kRows - 1; r >= 0; --r) {
    if (r < rows.count) {
      Vec<S, kVec> dg_out, dk_out, dv_out;
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float ar = a[r][e];
        const float adj_k = dK[r][e] + carry[0].v[e];
        const float adj_v = dV[r][e] + carry[1].v[e];
        dk_out.v[e] = from_float<S>((1.0f - ar) * adj_k);
        dv_out.v[e] = from_float<S>((1.0f - ar) * adj_v);
        dg_out.v[e] = from_float<S>(ar * (1.0f - ar) *
                                    __fmaf_rn(adj_k, diff[0][r].v[e], adj_v * diff[1][r].v[e]));
        carry[0].v[e] = ar * adj_k;
        carry[1].v[e] = ar * adj_v;
      }
      store_vec(args.dg + rows.offset + r * stride, dg_out);
      store_vec(args.dk + rows.offset + r * stride, dk_out);
      store_vec(args.dv + rows.offset + r * stride, dv_out);
    }
  }
  // dq last, when the rows above are dead: the look-back wait has no registers to spare.
  if constexpr (kRope) {
    const RowRotation<kVec> rotation(args.rope, rows.channel, args.rope.position_offset + rows.t,
                                     lane, -1.0f);
    rotate_rows<S, kVec, kRows>(args.dq_rope, args.dq, rows, stride, rotation);
  }
}

// ---- host -----------------------------------------------------------------------------

bool aligned(const Tensor& t, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(t.raw()) % bytes == 0;
}

// Whether C and every pointer allow kVec-channel accesses (else one channel per lane).
template <typename S>
bool can_vectorise(std::int64_t channels, std::initializer_list<const Tensor*> storage,
                   const Tensor& gate) {
  constexpr int kVec = ScanLaunch::kVec;
  if (channels % kVec != 0 || !aligned(gate, sizeof(float) * kVec)) return false;
  for (const Tensor* t : storage)
    if (!aligned(*t, sizeof(S) * kVec)) return false;
  return true;
}

// The scratch of one launch: the ticket and status words zeroed on `stream`; records
// left unset (each is written before its status announces it).
struct LookbackScratch {
  Tensor words;    // (1 + tiles) i32: the ticket counter, then one status per tile
  Tensor records;  // (tiles, 5, W) f32: aggregate (3 W) then inclusive (2 W) records

  LookbackScratch(std::int64_t tiles, int width, cudaStream_t stream)
      : words(Tensor::empty({1 + tiles}, DType::i32, Device::cuda)),
        records(Tensor::empty({tiles, 5, width}, DType::f32, Device::cuda)) {
    RT_CHECK_CUDA(cudaMemsetAsync(words.raw(), 0, words.nbytes(), stream));
  }
  LookbackState state() const {
    auto* w = static_cast<unsigned*>(words.raw());
    auto* r = static_cast<float*>(records.raw());
    const std::int64_t tiles = records.dim(0), width = records.dim(2);
    return {.next_ticket = w, .status = w + 1, .aggregate = r, .inclusive = r + tiles * 3 * width};
  }
};

// The tiling of a (B, T, C) problem.
template <int kVec, int kRows>
ScanShape scan_shape(const Tensor& like, const char* op) {
  using Tile = TileShape<kVec, kRows>;
  const std::int64_t batch = like.dim(0), seq = like.dim(1), channels = like.dim(2);
  const std::int64_t column_tiles = (channels + Tile::kChannels - 1) / Tile::kChannels;
  const std::int64_t chunks = (seq + Tile::kLength - 1) / Tile::kLength;
  // One block per tile, tickets 32-bit; row offsets inside a lane's rows 32-bit.
  RT_REQUIRE(batch * column_tiles * chunks < (std::int64_t{1} << 31) &&
                 channels * kRows < (std::int64_t{1} << 31),
             op, ": (B, T, C) = (", batch, ", ", seq, ", ", channels, ") is too large");
  return {.batch = static_cast<int>(batch), .seq = seq, .channels = static_cast<int>(channels),
          .column_tiles = static_cast<int>(column_tiles), .chunks = static_cast<int>(chunks)};
}

unsigned tile_count(const ScanShape& s) {
  return static_cast<unsigned>(std::int64_t{s.batch} * s.column_tiles * s.chunks);
}

// Blocks per SM a launch is compiled for: RoPE's rotation needs registers that the f32
// scans (the tests' storage) have only at two blocks per SM, like the bf16 ones.
template <typename Tuning, bool kRope>
constexpr int min_blocks() {
  return kRope && Tuning::kMinBlocks > 2 ? 2 : Tuning::kMinBlocks;
}

// Launches a scan whose operands `args` names; sets its shape (from `like`, (B, T, C)) and
// its scratch.
template <typename S, int kVec, bool kRope>
void launch_forward(ForwardArgs<S> args, const Tensor& like, cudaStream_t stream) {
  using Tuning = ScanTuning<S, Direction::forward>;
  args.shape = scan_shape<kVec, Tuning::kRows>(like, "gated_scan_forward");
  const LookbackScratch scratch(tile_count(args.shape), 32 * kVec, stream);
  args.lookback = scratch.state();
  gated_scan_forward_kernel<S, kVec, Tuning::kRows, min_blocks<Tuning, kRope>(), kRope>
      <<<tile_count(args.shape), ScanLaunch::kThreads, 0, stream>>>(args);
  RT_CHECK_LAUNCH();
}

template <typename S, int kVec, bool kRope>
void launch_backward(BackwardArgs<S> args, const Tensor& like, cudaStream_t stream) {
  using Tuning = ScanTuning<S, Direction::reverse>;
  args.shape = scan_shape<kVec, Tuning::kRows>(like, "gated_scan_backward");
  const LookbackScratch scratch(tile_count(args.shape), 32 * kVec, stream);
  args.lookback = scratch.state();
  gated_scan_backward_kernel<S, kVec, Tuning::kRows, min_blocks<Tuning, kRope>(), kRope>
      <<<tile_count(args.shape), ScanLaunch::kThreads, 0, stream>>>(args);
  RT_CHECK_LAUNCH();
}

template <typename S>
ForwardArgs<S> forward_args(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                            Tensor& K, Tensor& V) {
  return {.g = cptr<S>(g), .k = cptr<S>(k), .v = cptr<S>(v), .gate = ptr<float>(gate),
          .K = ptr<S>(K), .V = ptr<S>(V), .q = nullptr, .q_rope = nullptr, .k_rope = nullptr,
          .rope = {}, .shape = {}, .lookback = {}};
}

template <typename S>
BackwardArgs<S> backward_args(const Tensor& gate, const Tensor& k, const Tensor& v,
                              const Tensor& K, const Tensor& V, const Tensor& dK, const Tensor& dV,
                              Tensor& dg, Tensor& dk, Tensor& dv) {
  return {.gate = cptr<float>(gate), .k = cptr<S>(k), .v = cptr<S>(v), .K = cptr<S>(K),
          .V = cptr<S>(V), .dK = cptr<S>(dK), .dV = cptr<S>(dV), .dg = ptr<S>(dg),
          .dk = ptr<S>(dk), .dv = ptr<S>(dv), .dq_rope = nullptr, .dq = nullptr, .rope = {},
          .shape = {}, .lookback = {}};
}

// Whether RoPE can ride in the scan: whole 64-channel halves of heads (dh % 64 == 0), the
// two-channel vectors, and C = H dh.
template <typename S>
bool can_fuse_rope(const Tensor& heads_like, std::initializer_list<const Tensor*> storage,
                   const Tensor& gate) {
  const std::int64_t dh = heads_like.dim(3);
  return dh % 64 == 0 && dh / 2 <= RopeArgs::kMaxHalf &&
         can_vectorise<S>(heads_like.dim(2) * dh, storage, gate);
}

RopeArgs rope_args(const Tensor& heads_like, double base, std::int64_t position_offset) {
  RopeArgs rope;
  rope.head_dim = static_cast<int>(heads_like.dim(3));
  rope.position_offset = position_offset;
  const int half = rope.head_dim / 2;
  for (int i = 0; i < half; ++i)
    rope.turn[i] = std::pow(base, -2.0 * i / rope.head_dim) / std::numbers::pi;
  return rope;
}

}  // namespace

void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V, cudaStream_t stream) {
  if (g.numel() == 0) return;
  dispatch_storage(g, "gated_scan_forward", [&](auto tag) {
    using S = decltype(tag);
    const ForwardArgs<S> args = forward_args<S>(g, k, v, gate, K, V);
    if (can_vectorise<S>(g.dim(2), {&g, &k, &v, &K, &V}, gate))
      launch_forward<S, ScanLaunch::kVec, false>(args, g, stream);
    else
      launch_forward<S, 1, false>(args, g, stream);
  });
}

void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv, cudaStream_t stream) {
  if (k.numel() == 0) return;
  dispatch_storage(k, "gated_scan_backward", [&](auto tag) {
    using S = decltype(tag);
    const BackwardArgs<S> args = backward_args<S>(gate, k, v, K, V, dK, dV, dg, dk, dv);
    if (can_vectorise<S>(k.dim(2), {&k, &v, &K, &V, &dK, &dV, &dg, &dk, &dv}, gate))
      launch_backward<S, ScanLaunch::kVec, false>(args, k, stream);
    else
      launch_backward<S, 1, false>(args, k, stream);
  });
}

void gated_scan_rope_forward(const Tensor& g, const Tensor& k, const Tensor& v, const Tensor& q,
                             double base, std::int64_t position_offset, Tensor& gate, Tensor& K,
                             Tensor& V, Tensor& q_rope, Tensor& k_rope, cudaStream_t stream) {
  if (g.numel() == 0) return;
  dispatch_storage(g, "gated_scan_rope_forward", [&](auto tag) {
    using S = decltype(tag);
    if (!can_fuse_rope<S>(q, {&g, &k, &v, &q, &K, &V, &q_rope, &k_rope}, gate)) {
      gated_scan_forward(g, k, v, gate, K, V, stream);
      rope_forward(q, base, position_offset, q_rope, stream);
      rope_forward(K.view(q.shape()), base, position_offset, k_rope, stream);
      return;
    }
    ForwardArgs<S> args = forward_args<S>(g, k, v, gate, K, V);
    args.q = cptr<S>(q), args.q_rope = ptr<S>(q_rope), args.k_rope = ptr<S>(k_rope);
    args.rope = rope_args(q, base, position_offset);
    launch_forward<S, ScanLaunch::kVec, true>(args, g, stream);
  });
}

void gated_scan_rope_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                              const Tensor& K, const Tensor& V, const Tensor& dq_rope,
                              const Tensor& dk_rope, const Tensor& dV, double base,
                              std::int64_t position_offset, Tensor& dg, Tensor& dk, Tensor& dv,
                              Tensor& dq, cudaStream_t stream) {
  if (k.numel() == 0) return;
  dispatch_storage(k, "gated_scan_rope_backward", [&](auto tag) {
    using S = decltype(tag);
    if (!can_fuse_rope<S>(dq_rope, {&k, &v, &K, &V, &dq_rope, &dk_rope, &dV, &dg, &dk, &dv, &dq},
                          gate)) {
      Tensor dK = Tensor::empty(k.shape(), k.dtype(), Device::cuda);
      Tensor dK_heads = dK.view(dk_rope.shape());
      rope_backward(dq_rope, base, position_offset, dq, stream);
      rope_backward(dk_rope, base, position_offset, dK_heads, stream);
      gated_scan_backward(gate, k, v, K, V, dK, dV, dg, dk, dv, stream);
      return;
    }
    BackwardArgs<S> args = backward_args<S>(gate, k, v, K, V, dk_rope, dV, dg, dk, dv);
    args.dq_rope = cptr<S>(dq_rope), args.dq = ptr<S>(dq);
    args.rope = rope_args(dq_rope, base, position_offset);
    launch_backward<S, ScanLaunch::kVec, true>(args, k, stream);
  });
}

}  // namespace ratrain::cuda
