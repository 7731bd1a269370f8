// cuBLASLt GEMM for row-major tensors (see gemm.hpp). One handle and one 32 MiB
// workspace per process; descriptors are built per call (microseconds; caching them
// per shape is a later optimisation once the step is launch-bound).
#include <cublasLt.h>

#include <utility>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/gemm.hpp"
#include "runtime/cuda_check.hpp"

namespace ratrain::detail {
inline bool cublas_ok(cublasStatus_t status) { return status == CUBLAS_STATUS_SUCCESS; }
inline std::string cublas_describe(cublasStatus_t status) {
  return concat(cublasLtGetStatusName(status), ": ", cublasLtGetStatusString(status));
}
}  // namespace ratrain::detail

#define RT_CHECK_CUBLAS(call) \
  RT_CHECK_WITH("cuBLASLt call failed", call, ::ratrain::detail::cublas_ok, ::ratrain::detail::cublas_describe)

namespace ratrain::cuda {
namespace {

constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;  // what cuBLAS suggests for Hopper

struct LtContext {
  cublasLtHandle_t handle = nullptr;
  Tensor workspace;
};

LtContext& lt_context() {
  static LtContext* context = [] {
    auto* c = new LtContext;  // never destroyed: see runtime/device_memory_cuda.cpp
    RT_CHECK_CUBLAS(cublasLtCreate(&c->handle));
    c->workspace = Tensor::empty({static_cast<std::int64_t>(kWorkspaceBytes / 4)}, DType::i32,
                                 Device::cuda);
    return c;
  }();
  return *context;
}

// RAII owners of the cuBLASLt descriptors of one call.
struct Layout {
  cublasLtMatrixLayout_t desc = nullptr;
  Layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    RT_CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&desc, type, static_cast<std::uint64_t>(rows),
                                               static_cast<std::uint64_t>(cols), ld));
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(desc); }
};
struct MatmulDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  MatmulDesc(cublasComputeType_t compute, bool trans_a, bool trans_b) {
    RT_CHECK_CUBLAS(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
    const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    RT_CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    RT_CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  }
  ~MatmulDesc() { cublasLtMatmulDescDestroy(desc); }
};
// The largest power of two (up to 256) dividing the address: parameter views of the
// flat buffers (ParamStore) start wherever the previous parameter ended.
std::uint32_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

struct Preference {
  cublasLtMatmulPreference_t desc = nullptr;
  // cuBLASLt assumes 256-byte-aligned operands unless told otherwise, and may then pick a
  // kernel whose vector loads fault on a less aligned view; so state the real alignment.
  Preference(const void* a, const void* b, const void* c) {
    RT_CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&desc));
    RT_CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
        desc, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspaceBytes, sizeof kWorkspaceBytes));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, const void*> operands[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, c},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, c}};
    for (const auto& [attribute, pointer] : operands) {
      const std::uint32_t alignment = alignment_of(pointer);
      RT_CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(desc, attribute, &alignment, sizeof alignment));
    }
  }
  ~Preference() { cublasLtMatmulPreferenceDestroy(desc); }
};

// The (rows, cols) of a row-major operand as stored, before its op.
struct Stored {
  std::int64_t rows, cols;
};
Stored stored(const Tensor& t) { return {t.dim(0), t.dim(1)}; }

}  // namespace

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const RowMajorGemm& spec,
          cudaStream_t stream) {
  RT_REQUIRE(a.dtype() == b.dtype() && (a.dtype() == DType::bf16 || a.dtype() == DType::f32),
             "gemm: A and B must share f32 or bf16 storage, got ", dtype_name(a.dtype()), " and ",
             dtype_name(b.dtype()));
  RT_REQUIRE(c.dtype() == a.dtype() || c.dtype() == DType::f32, "gemm: C must be ",
             dtype_name(a.dtype()), " or f32, got ", dtype_name(c.dtype()));
  const Stored sa = stored(a), sb = stored(b);
  const std::int64_t m = spec.transpose_a ? sa.cols : sa.rows;
  const std::int64_t k = spec.transpose_a ? sa.rows : sa.cols;
  const std::int64_t n = spec.transpose_b ? sb.rows : sb.cols;
  RT_ASSERT((spec.transpose_b ? sb.cols : sb.rows) == k && c.dim(0) == m && c.dim(1) == n);
  if (m == 0 || n == 0) return;

  const bool bf16 = a.dtype() == DType::bf16;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cudaDataType_t c_type = c.dtype() == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute = bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
  // Column-major view: C^T (n, m) = op(B)^T (n, k) . op(A)^T (k, m); the stored
  // row-major B is the column-major B^T (sb.cols, sb.rows) with ld sb.cols, and so on.
  const MatmulDesc desc(compute, spec.transpose_b, spec.transpose_a);
  const Layout lb(type, sb.cols, sb.rows, sb.cols);  // first operand of the col-major product
  const Layout la(type, sa.cols, sa.rows, sa.cols);
  const Layout lc(c_type, n, m, n);
  // The column-major product's A is our B and vice versa (see above).
  const Preference preference(b.raw(), a.raw(), c.raw());

  LtContext& lt = lt_context();
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  RT_CHECK_CUBLAS(cublasLtMatmulAlgoGetHeuristic(lt.handle, desc.desc, lb.desc, la.desc, lc.desc,
                                                 lc.desc, preference.desc, 1, &heuristic, &found));
  RT_REQUIRE(found > 0, "cuBLASLt has no algorithm for a ", m, " x ", n, " x ", k, " ",
             dtype_name(a.dtype()), " GEMM");
  RT_CHECK_CUBLAS(cublasLtMatmul(lt.handle, desc.desc, &spec.alpha, b.raw(), lb.desc, a.raw(),
                                 la.desc, &spec.beta, c.raw(), lc.desc, c.raw(), lc.desc,
                                 &heuristic.algo, lt.workspace.raw(), kWorkspaceBytes, stream));
}

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y, cudaStream_t stream) {
  gemm(x, w, y, {.transpose_b = true}, stream);  // y = x W^T
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                     cudaStream_t stream) {
  if (dx) gemm(dy, w, *dx, {}, stream);                                 // dx = dy W
  gemm(dy, x, dw, {.transpose_a = true, .beta = 1.0f}, stream);         // dW (f32) += dy^T x
}

}  // namespace ratrain::cuda
