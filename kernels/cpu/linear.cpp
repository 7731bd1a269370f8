// Linear layer without bias, y = x W^T, as three GEMMs (gemm.hpp).
// x (N, I), W (O, I), y (N, O). dx is overwritten (beta 0), dW accumulated (beta 1).
#include "kernels/cpu/cpu.hpp"
#include "kernels/cpu/gemm.hpp"

namespace ratrain::cpu {

template <typename T>
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y) {
  const std::int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  // y (N, O) = x (N, I) * W^T (I, O)
  gemm<T>({.trans_b = Trans::yes, .m = n, .n = out, .k = in, .a = x.data<T>(), .lda = in,
           .b = w.data<T>(), .ldb = in, .c = y.data<T>(), .ldc = out});
}

template <typename T>
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw) {
  const std::int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  if (dx) {
    // dx (N, I) = dy (N, O) * W (O, I)
    gemm<T>({.m = n, .n = in, .k = out, .a = dy.data<T>(), .lda = out, .b = w.data<T>(),
             .ldb = in, .c = dx->data<T>(), .ldc = in});
  }
  // dW (O, I) += dy^T (O, N) * x (N, I)
  gemm<T>({.trans_a = Trans::yes, .m = out, .n = in, .k = n, .a = dy.data<T>(), .lda = out,
           .b = x.data<T>(), .ldb = in, .beta = 1, .c = dw.data<T>(), .ldc = in});
}

template void linear_forward<float>(const Tensor&, const Tensor&, Tensor&);
template void linear_forward<double>(const Tensor&, const Tensor&, Tensor&);
template void linear_backward<float>(const Tensor&, const Tensor&, const Tensor&, Tensor*, Tensor&);
template void linear_backward<double>(const Tensor&, const Tensor&, const Tensor&, Tensor*,
                                      Tensor&);

}  // namespace ratrain::cpu
