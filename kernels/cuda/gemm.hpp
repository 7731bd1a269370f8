// Matrix products on the GPU through cuBLASLt, for row-major ratrain tensors.
// Storage bf16 (tensor cores, fp32 accumulation) or f32 (CUBLAS_COMPUTE_32F, exact fp32,
// so that f32 GPU runs can be compared with the CPU reference at 1e-5).
//
// Row-major (r, c) with leading dimension c is column-major (c, r), so every row-major
// product C = op(A) op(B) is issued as the column-major C^T = op(B)^T op(A)^T:
//   linear forward   y (N,O) = x (N,I) W^T        -> Y^T = W^T-as-stored . X^T
//   linear dx        dx (N,I) = dy (N,O) W (O,I)  -> DX^T = W^T . DY^T
//   linear dW        dW (O,I) += dy^T x           -> DW^T = X^T . DY
// (Worked through with shapes in gemm.cu.)
#pragma once

#include <cuda_runtime_api.h>

#include "runtime/tensor.hpp"

namespace ratrain::cuda {

// C (m, n) = alpha * op(A) op(B) + beta * C, all row-major; op(A) is (m, k), op(B)
// (k, n). A and B share one storage dtype (f32 or bf16); C is of that dtype or f32 (a
// bf16 product written or accumulated in fp32: gradients, logits).
struct RowMajorGemm {
  bool transpose_a = false;
  bool transpose_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;  // 1 accumulates into C
};
void gemm(const Tensor& a, const Tensor& b, Tensor& c, const RowMajorGemm& spec,
          cudaStream_t stream);

}  // namespace ratrain::cuda
