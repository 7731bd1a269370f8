// Hopper warpgroup MMA (wgmma.mma_async, sm_90a) for the bf16 attention kernels:
// shared-memory tile layout, matrix descriptors, and the m64nNk16 products with fp32
// accumulators (N = 64 or 128), A from shared memory or from registers.
//
// Tile layout ("wgmma tile"): a (rows x cols) bf16 tile, cols a multiple of 64, is
// stored as cols/64 column blocks one after another; block b holds columns 64b..64b+63
// of every row as one 128-byte row each, and the 16-byte chunk c (0..7) of row r sits
// at chunk c ^ (r % 8) (the hardware's 128-byte swizzle; tiles start 1024-byte
// aligned). The same physical tile serves as
//   - a K-major operand (rows = M or N, columns = K): 8-row groups 1024 bytes apart
//     (stride byte offset); a k16 step advances the start address by 32 bytes inside
//     the swizzled row, and by one column block every 4 steps;
//   - an MN-major operand (rows = K, columns = M or N; the "transposed" flag): 8-row
//     K groups 1024 bytes apart (stride byte offset), 64-column blocks rows x 128 bytes
//     apart (leading byte offset); a k16 step advances the start by 16 rows.
//
// Accumulators (m64nN, f32): warp w of the warpgroup holds rows 16w..16w+15; for n8
// tile j, d[j][0], d[j][1] = (row 16w + g, columns 8j + 2t, +1) and d[j][2], d[j][3] the
// same columns of row 16w + g + 8 (g = lane / 4, t = lane % 4): per warp, exactly the
// mma.sync m16n8 C fragment repeated over N/8 tiles. The register A operand of one k16
// step is the mma.sync m16n8k16 A fragment of the warp's 16 rows, so
// mma::accumulators_to_a turns probabilities into A operands in registers.
//
// Ordering rules (PTX ISA, wgmma): wgmma::fence() before the first wgmma that reads
// registers written since the last one (accumulators, register A operands); commit()
// closes a group of issued products; wait<N>() blocks until at most N groups are in
// flight, after which the accumulators may be read. Shared memory written through the
// generic proxy (st.shared, cp.async) must be published with fence_proxy_async() before
// the barrier that precedes the wgmma reading it.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/attention_mma.cuh"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "wgmma needs the sm_90a target (CMAKE_CUDA_ARCHITECTURES=90a)"
#endif

namespace ratrain::cuda::wgmma {

using mma::bf16;

inline constexpr int kGroupBytes = 1024;  // 8 rows of 128 bytes: one swizzle atom
inline constexpr int kRowBytes = 128;     // one row of a column block

// Element offset of chunk `chunk` (8 columns, 0 .. cols/8 - 1) of row `row` in a
// wgmma tile of kRows rows.
template <int kRows>
__device__ __forceinline__ int tile_offset(int row, int chunk) {
  return (chunk / 8) * kRows * 64 + row * 64 + (((chunk % 8) ^ (row % 8)) << 3);
}

// Bytes between two column blocks of a wgmma tile of kRows rows.
template <int kRows>
inline constexpr int kBlockBytes = kRows * kRowBytes;

// The first 1024-byte aligned address of dynamic shared memory `smem` (wgmma tiles
// start at a swizzle-atom boundary; kernels reserve kGroupBytes extra for this).
__device__ __forceinline__ bf16* aligned_tiles(unsigned char* smem) {
  const unsigned misalignment = mma::shared_address(smem) % kGroupBytes;
  return reinterpret_cast<bf16*>(smem + (kGroupBytes - misalignment) % kGroupBytes);
}

// Descriptor of a 128-byte-swizzled operand starting at `start` (shared memory).
__device__ __forceinline__ std::uint64_t descriptor(const void* start, int leading_bytes,
                                                    int stride_bytes) {
  const auto address = static_cast<std::uint64_t>(mma::shared_address(start));
  return ((address & 0x3FFFF) >> 4) | (std::uint64_t(leading_bytes >> 4) << 16) |
         (std::uint64_t(stride_bytes >> 4) << 32) | (std::uint64_t{1} << 62);
}

// The descriptor of an operand `bytes` (a multiple of 16) past the start of `desc`'s:
// the start address field counts 16-byte units, and shared memory addresses stay
// below 2^18 bytes, so the add never carries out of it. The unrolled k16 steps of a
// product thus share one descriptor computation and differ by a constant.
__device__ __forceinline__ std::uint64_t advance(std::uint64_t desc, int bytes) { return desc + (bytes >> 4); }

// Operand descriptors of k16 step `kstep` of a wgmma tile of kRows rows whose first
// used row is `row0` (a multiple of 8).
template <int kRows>
__device__ __forceinline__ std::uint64_t k_major(const bf16* tile, int row0, int kstep) {
  return advance(descriptor(tile, 16, kGroupBytes),
                 (kstep / 4) * kBlockBytes<kRows> + row0 * kRowBytes + (kstep % 4) * 32);
}
// MN-major: the tile's rows are K; `block0` is the first 64-column block used.
template <int kRows>
__device__ __forceinline__ std::uint64_t mn_major(const bf16* tile, int block0, int kstep) {
  return advance(descriptor(tile, kBlockBytes<kRows>, kGroupBytes),
                 block0 * kBlockBytes<kRows> + kstep * 16 * kRowBytes);
}

__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Makes this thread's generic-proxy shared-memory writes visible to wgmma.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Binds the N/2 accumulator registers of d (N/8 tiles of 4) to asm operands %0...
#define RT_WGMMA_D8(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3]), \
    "+f"(d[j + 1][0]), "+f"(d[j + 1][1]), "+f"(d[j + 1][2]), "+f"(d[j + 1][3])
#define RT_WGMMA_D32(d) RT_WGMMA_D8(d, 0), RT_WGMMA_D8(d, 2), RT_WGMMA_D8(d, 4), RT_WGMMA_D8(d, 6)
#define RT_WGMMA_D64(d) RT_WGMMA_D32(d), RT_WGMMA_D8(d, 8), RT_WGMMA_D8(d, 10), \
    RT_WGMMA_D8(d, 12), RT_WGMMA_D8(d, 14)
#define RT_WGMMA_REGS32                                                                      \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define RT_WGMMA_REGS64                                                                        \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "   \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, " \
  "%37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, " \
  "%55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d (+)= A B for one k16 step, A and B from shared memory. kTransA / kTransB: the
// operand is MN-major. accumulate = false overwrites d.
template <int kN, int kTransA, int kTransB>
__device__ __forceinline__ void mma_ss(float (&d)[kN / 8][4], std::uint64_t a, std::uint64_t b,
                                       bool accumulate) {
  static_assert(kN == 64 || kN == 128, "compiled for N = 64 and 128");
  if constexpr (kN == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " RT_WGMMA_REGS32
        ", %32, %33, p, 1, 1, %35, %36;\n}\n"
        : RT_WGMMA_D32(d)
        : "l"(a), "l"(b), "r"(int(accumulate)), "n"(kTransA), "n"(kTransB));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RT_WGMMA_REGS64
        ", %64, %65, p, 1, 1, %67, %68;\n}\n"
        : RT_WGMMA_D64(d)
        : "l"(a), "l"(b), "r"(int(accumulate)), "n"(kTransA), "n"(kTransB));
  }
}

// d (+)= A B for one k16 step, A from registers (the warp's mma.sync A fragment), B
// from shared memory.
template <int kN, int kTransB>
__device__ __forceinline__ void mma_rs(float (&d)[kN / 8][4], const unsigned (&a)[4],
                                       std::uint64_t b, bool accumulate) {
  static_assert(kN == 64 || kN == 128, "compiled for N = 64 and 128");
  if constexpr (kN == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " RT_WGMMA_REGS32
        ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : RT_WGMMA_D32(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)), "n"(kTransB));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RT_WGMMA_REGS64
        ", {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : RT_WGMMA_D64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)), "n"(kTransB));
  }
}

#undef RT_WGMMA_D8
#undef RT_WGMMA_D32
#undef RT_WGMMA_D64
#undef RT_WGMMA_REGS32
#undef RT_WGMMA_REGS64

}  // namespace ratrain::cuda::wgmma
