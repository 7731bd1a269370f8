// Host side of tma.cuh: tensor maps, encoded through the driver entry point that the
// runtime hands out (no link against libcuda).
#include <cudaTypedefs.h>

#include "kernels/cuda/tma.cuh"

namespace ratrain::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* address = nullptr;
    cudaDriverEntryPointQueryResult found{};
    RT_CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &address, 12000,
                                                   cudaEnableDefault, &found));
    RT_REQUIRE(found == cudaDriverEntryPointSuccess && address != nullptr,
               "the CUDA driver offers no cuTensorMapEncodeTiled (TMA needs driver >= 12.0)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(address);
  }();
  return fn;
}

// A bf16 map of `rank` dimensions (sizes innermost first, byte strides of dimensions
// 1.. ) with 128-byte swizzled boxes of 64 columns.
template <int kRank>
CUtensorMap encode_bf16_map(const void* base, const cuuint64_t (&dims)[kRank],
                            const cuuint64_t (&strides)[kRank - 1], const cuuint32_t (&box)[kRank],
                            const AttentionShape& shape) {
  cuuint32_t element_strides[kRank];
  for (cuuint32_t& e : element_strides) e = 1;
  CUtensorMap map;
  const CUresult result = encode_tiled()(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, kRank, const_cast<void*>(base), dims, strides, box,
      element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  RT_REQUIRE(result == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed (error ", int(result),
             ") for a ", kRank, "-d map of attention rows of shape (", shape.batch, ", ",
             shape.seq, ", ", shape.heads, ", ", shape.dh, ")");
  return map;
}

constexpr cuuint64_t kElem = sizeof(__nv_bfloat16);

}  // namespace

CUtensorMap make_attention_rows_map(const void* base, const AttentionShape& shape, int rows) {
  const cuuint64_t position = cuuint64_t(shape.row_stride()) * kElem;
  return encode_bf16_map<4>(base,
                            {cuuint64_t(shape.dh), cuuint64_t(shape.seq), cuuint64_t(shape.heads),
                             cuuint64_t(shape.batch)},
                            {position, cuuint64_t(shape.dh) * kElem, shape.seq * position},
                            {64, cuuint32_t(rows), 1, 1}, shape);
}

CUtensorMap make_chunk_ends_map(const void* base, const AttentionShape& shape, int chunk,
                                int rows) {
  RT_REQUIRE(chunk >= 2 && chunk <= shape.seq, "make_chunk_ends_map: chunk ", chunk,
             " must be in [2, T = ", shape.seq, "]");
  const cuuint64_t position = cuuint64_t(shape.row_stride()) * kElem;
  return encode_bf16_map<5>(
      base,
      {cuuint64_t(shape.dh), cuuint64_t(chunk), cuuint64_t(shape.seq / chunk),
       cuuint64_t(shape.heads), cuuint64_t(shape.batch)},
      {position, chunk * position, cuuint64_t(shape.dh) * kElem, shape.seq * position},
      {64, 1, cuuint32_t(rows), 1, 1}, shape);
}

}  // namespace ratrain::cuda
