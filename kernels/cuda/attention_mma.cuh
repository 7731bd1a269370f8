// Tensor-core building blocks of the bf16 attention kernels: asynchronous copies into
// swizzled shared-memory tiles, ldmatrix loads of mma.sync fragments, and the
// m16n8k16 bf16 MMA with fp32 accumulators (inline PTX; sm_80 instructions, run on
// sm_90a).
//
// Fragments of mma.sync.m16n8k16.row.col (g = lane / 4, t = lane % 4; each 32-bit
// register holds two bf16, the lower column/k index in the low half):
//   A (16 x 16, m x k): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 8+2t..),
//                       a3 = (g+8, 8+2t..)
//   B (16 x 8,  k x n): b0 = (k 2t..2t+1, n g), b1 = (k 8+2t.., n g)
//   C (16 x 8,  m x n, f32): c0, c1 = (g, 2t), (g, 2t+1); c2, c3 = (g+8, 2t), (g+8, 2t+1)
// The C fragments of two neighbouring n8 tiles are, packed to bf16, exactly the A
// fragment of one k16 step (c0c1 of tile 2s -> a0, c2c3 -> a1, tile 2s+1 -> a2, a3):
// that is how softmax probabilities stay in registers between the two products.
//
// Shared tiles are row-major in 16-byte chunks (8 bf16); chunk c of row r is stored at
// chunk c ^ (r % 8). An ldmatrix phase reads one chunk column of 8 consecutive rows,
// which the XOR spreads over all 32 banks (rows of 128 or 256 bytes would otherwise
// hit the same 4 banks 8 times).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace ratrain::cuda::mma {

using bf16 = __nv_bfloat16;

// Element offset of chunk `chunk` (8 columns) of row `row` in a swizzled tile of kCols
// columns.
template <int kCols>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  static_assert(kCols % 64 == 0, "the XOR with row % 8 needs a multiple of 8 chunks per row");
  return row * kCols + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy, zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)),
               "l"(src), "r"(valid ? 16 : 0));
}
// 4-byte global -> shared copy (statistics rows, whose starts are only 4-byte aligned),
// zero-filled when !valid.
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared_address(dst)), "l"(src),
               "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most `kPending` of this thread's committed groups are in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Copies kRows rows of kCols bf16 into a tile: element chunk c (8 columns) of tile row r
// goes to tile + tile_offset(r, c), from row source_row(r) of `head` (rows `stride`
// elements apart), zeros where source_row(r) < 0. Called by all kThreads threads of the
// block; completes at the next cp_async_wait.
template <int kCols, int kRows, int kThreads, typename TileOffset, typename SourceRow>
__device__ __forceinline__ void copy_rows_async(bf16* tile, TileOffset&& tile_offset,
                                                const bf16* head, std::int64_t stride,
                                                SourceRow&& source_row) {
  constexpr int kChunks = kCols / 8;
  static_assert((kRows * kChunks) % kThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int step = 0; step < kRows * kChunks / kThreads; ++step) {
    const int c = step * kThreads + static_cast<int>(threadIdx.x);
    const int r = c / kChunks, chunk = c % kChunks;
    const int source = source_row(r);
    const bf16* src = head + (source >= 0 ? source * stride : 0) + chunk * 8;
    cp_async_16(tile + tile_offset(r, chunk), src, source >= 0);
  }
}
// The same into a swizzled row-major tile (the layout of the ldmatrix loads below).
template <int kCols, int kRows, int kThreads, typename SourceRow>
__device__ __forceinline__ void copy_rows_async(bf16* tile, const bf16* head, std::int64_t stride,
                                                SourceRow&& source_row) {
  copy_rows_async<kCols, kRows, kThreads>(
      tile, [](int r, int chunk) { return swizzled<kCols>(r, chunk); }, head, stride, source_row);
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

// The four loads below read the 16 x 16 block at rows row0.., chunks chunk0, chunk0+1
// of a swizzled tile. Lane l addresses one row of 8x8 matrix l / 8; the two lane
// patterns order the matrices either (rows 0-7 | 8-15) first or (chunk 0 | 1) first.

// A fragment of a row-major (m x k) tile: block rows = m, columns = k.
template <int kCols>
__device__ __forceinline__ void load_a(unsigned (&a)[4], const bf16* tile, int row0, int chunk0,
                                       int lane) {
  ldmatrix_x4(a, tile + swizzled<kCols>(row0 + lane % 16, chunk0 + lane / 16));
}
// A fragment of a tile stored transposed (k x m): block rows = k, columns = m.
template <int kCols>
__device__ __forceinline__ void load_a_transposed(unsigned (&a)[4], const bf16* tile, int row0,
                                                  int chunk0, int lane) {
  ldmatrix_x4_trans(a, tile + swizzled<kCols>(row0 + lane % 8 + 8 * (lane / 16),
                                              chunk0 + (lane / 8) % 2));
}
// B fragments of two n8 tiles from an (n x k) tile (B^T row-major: rows = n, columns
// = k): {b[0], b[1]} for rows row0..row0+7, {b[2], b[3]} for rows row0+8..row0+15.
template <int kCols>
__device__ __forceinline__ void load_b(unsigned (&b)[4], const bf16* tile, int row0, int chunk0,
                                       int lane) {
  ldmatrix_x4(b, tile + swizzled<kCols>(row0 + lane % 8 + 8 * (lane / 16),
                                        chunk0 + (lane / 8) % 2));
}
// B fragments of two n8 tiles from a (k x n) tile (rows = k, columns = n): {b[0],
// b[1]} for columns chunk0, {b[2], b[3]} for columns chunk0 + 1.
template <int kCols>
__device__ __forceinline__ void load_b_transposed(unsigned (&b)[4], const bf16* tile, int row0,
                                                  int chunk0, int lane) {
  ldmatrix_x4_trans(b, tile + swizzled<kCols>(row0 + lane % 16, chunk0 + lane / 16));
}

// d += a b (16 x 8 x 16, bf16 inputs, fp32 accumulators).
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                          unsigned b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded to bf16 (nearest even) in one register, `lo` in the low half.
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&v);
}

// The A fragment of k16 step s from the C fragments of n8 tiles 2s and 2s+1.
__device__ __forceinline__ void accumulators_to_a(unsigned (&a)[4], const float (&c0)[4],
                                                  const float (&c1)[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

}  // namespace ratrain::cuda::mma
