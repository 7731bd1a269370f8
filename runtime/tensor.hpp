// Tensor: a typed, shaped, contiguous view into reference-counted storage.
//
// Tensors are always row-major and contiguous; views share storage (reshape, a range
// of rows, or an element range of a flat buffer as the parameter table uses). Kernels
// take Tensors and check dtype, device and shape on the host before touching data.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dtype.hpp"
#include "runtime/error.hpp"

namespace ratrain {

using Shape = std::vector<std::int64_t>;
enum class Fill;  // runtime/allocator.hpp

std::string shape_str(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Contents unspecified (poisoned with NaN / -1 in builds without NDEBUG): for buffers
  // that are written before they are read.
  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu);
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::cpu);
  // A host tensor in page-locked memory (runtime/async_host_copy.hpp: copies from the GPU
  // run asynchronously into it); ordinary host memory without CUDA. Contents unspecified.
  static Tensor empty_pinned(Shape shape, DType dtype);

  bool defined() const { return data_ != nullptr || shape_numel(shape_) == 0; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Size of dimension i; negative i counts from the back.
  std::int64_t dim(int i) const;
  std::int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  template <typename T>
  T* data() const {
    RT_ASSERT(dtype_of<T>() == dtype_);
    return reinterpret_cast<T*>(data_);
  }
  void* raw() const { return data_; }

  // Same storage, new shape with the same number of elements.
  Tensor view(Shape shape) const;
  // Rows [begin, end) along dimension 0.
  Tensor rows(std::int64_t begin, std::int64_t end) const;
  // Elements [offset, offset + numel(shape)) of this tensor's storage as a new shape.
  Tensor flat_view(std::int64_t offset, Shape shape) const;

  void zero();
  // Copies `src` (same shape; any float dtype, converting; any devices) into this tensor.
  void copy_from(const Tensor& src);
  // A new CPU tensor holding this one converted to `dtype` (from any device).
  Tensor to(DType dtype) const;
  // A copy of this tensor, same dtype, on `device`.
  Tensor to(Device device) const;
  // Element i as double, for tests and diagnostics (host tensors only).
  double item(std::int64_t i = 0) const;

 private:
  static Tensor allocate(Shape shape, DType dtype, Device device, Fill fill);
  // A tensor of `shape` without storage yet (shape checked).
  static Tensor unallocated(Shape shape, DType dtype, Device device);

  std::shared_ptr<std::byte> storage_;
  std::byte* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

// Requires `t` to have exactly `shape`, naming `what` in the error.
void require_shape(const Tensor& t, const Shape& shape, const char* what);
// Requires all tensors to share one dtype and device with `first`.
void require_same_type(const Tensor& first, std::initializer_list<const Tensor*> others,
                       const char* op);

}  // namespace ratrain
