// Column split / concat of W_in's output into its segments (o, q, k, v, g) on the GPU,
// same semantics as kernels/cpu/columns.cpp:
//   x (N, count*C) <-> parts[s] (N, C) = x[:, s*C : (s+1)*C].
// Pure copies of any storage type: each part is one strided 2-D copy (N rows of C
// elements; pitch count*C on x's side, C on the part's side), enqueued on the stream.
#include <cstddef>

#include "kernels/cuda/cuda_ops.hpp"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

enum class Direction { split, concat };

void copy_columns(const Tensor& x, const Tensor* const* parts, int count, Direction direction,
                  cudaStream_t stream) {
  const auto rows = static_cast<std::size_t>(x.dim(0));
  const std::size_t element = dtype_size(x.dtype());
  const std::size_t part_pitch = static_cast<std::size_t>(x.dim(1) / count) * element;  // C
  const std::size_t x_pitch = part_pitch * static_cast<std::size_t>(count);            // count*C
  if (rows == 0 || part_pitch == 0) return;
  for (int s = 0; s < count; ++s) {
    auto* x_columns = static_cast<std::byte*>(x.raw()) + static_cast<std::size_t>(s) * part_pitch;
    void* part = parts[s]->raw();
    if (direction == Direction::split)
      RT_CHECK_CUDA(cudaMemcpy2DAsync(part, part_pitch, x_columns, x_pitch, part_pitch, rows,
                                      cudaMemcpyDeviceToDevice, stream));
    else
      RT_CHECK_CUDA(cudaMemcpy2DAsync(x_columns, x_pitch, part, part_pitch, part_pitch, rows,
                                      cudaMemcpyDeviceToDevice, stream));
  }
}

}  // namespace

void split_columns(const Tensor& x, Tensor* const* parts, int count, cudaStream_t stream) {
  copy_columns(x, parts, count, Direction::split, stream);
}

void concat_columns(const Tensor* const* parts, int count, Tensor& x, cudaStream_t stream) {
  copy_columns(x, parts, count, Direction::concat, stream);
}

}  // namespace ratrain::cuda
