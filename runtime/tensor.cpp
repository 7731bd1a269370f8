#include "runtime/tensor.hpp"

#include <sstream>

#include "runtime/allocator.hpp"
#include "runtime/async_host_copy.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ")";
  return out.str();
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

Tensor Tensor::unallocated(Shape shape, DType dtype, Device device) {
  for (auto s : shape) RT_REQUIRE(s >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::allocate(Shape shape, DType dtype, Device device, Fill fill) {
  Tensor t = unallocated(std::move(shape), dtype, device);
  t.storage_ = allocate_storage(t.nbytes(), device, fill);
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::empty_pinned(Shape shape, DType dtype) {
  Tensor t = unallocated(std::move(shape), dtype, Device::cpu);
  t.storage_ = allocate_pinned_host_storage(t.nbytes());
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  return allocate(std::move(shape), dtype, device, Fill::unspecified);
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  return allocate(std::move(shape), dtype, device, Fill::zeros);
}

std::int64_t Tensor::dim(int i) const {
  const int r = rank();
  const int idx = i < 0 ? i + r : i;
  RT_ASSERT(idx >= 0 && idx < r);
  return shape_[static_cast<std::size_t>(idx)];
}

Tensor Tensor::view(Shape shape) const {
  RT_REQUIRE(shape_numel(shape) == numel(), "cannot view ", shape_str(shape_), " as ",
             shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(std::int64_t begin, std::int64_t end) const {
  RT_ASSERT(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0]);
  const std::int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.data_ = data_ + begin * row * static_cast<std::int64_t>(dtype_size(dtype_));
  return t;
}

Tensor Tensor::flat_view(std::int64_t offset, Shape shape) const {
  RT_ASSERT(offset >= 0 && offset + shape_numel(shape) <= numel());
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.data_ = data_ + offset * static_cast<std::int64_t>(dtype_size(dtype_));
  return t;
}

void Tensor::zero() { fill_bytes(data_, device_, nbytes(), 0); }

namespace {
template <typename Dst, typename Src>
void convert(Dst* dst, const Src* src, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Dst, bf16>)
      dst[i] = bf16(static_cast<float>(src[i]));
    else if constexpr (std::is_same_v<Src, bf16>)
      dst[i] = static_cast<Dst>(static_cast<float>(src[i]));
    else
      dst[i] = static_cast<Dst>(src[i]);
  }
}

template <typename Fn>
void visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(bf16{});
    case DType::i32: return fn(std::int32_t{});
  }
}
}  // namespace

void Tensor::copy_from(const Tensor& src) {
  RT_REQUIRE(src.shape_ == shape_, "copy of shape ", shape_str(src.shape_), " into ",
             shape_str(shape_));
  if (src.dtype_ == dtype_) {
    copy_bytes(data_, device_, src.data_, src.device_, nbytes());
    return;
  }
  if (device_ == Device::cuda && src.device_ == Device::cuda &&
      can_convert_on_device(dtype_, src.dtype_)) {
    convert_on_device(data_, dtype_, src.data_, src.dtype_, numel());
    return;
  }
  if (device_ != Device::cpu || src.device_ != Device::cpu) {
    // Other converting copies involving the GPU stage through host memory: they serve
    // loading and testing, never the training step.
    const Tensor host_src = src.device_ == Device::cpu ? src : src.to(Device::cpu);
    Tensor converted = empty(shape_, dtype_, Device::cpu);
    converted.copy_from(host_src);
    copy_from(converted);
    return;
  }
  visit_dtype(dtype_, [&](auto dst_tag) {
    using Dst = decltype(dst_tag);
    visit_dtype(src.dtype_, [&](auto src_tag) {
      using Src = decltype(src_tag);
      convert(reinterpret_cast<Dst*>(data_), reinterpret_cast<const Src*>(src.data_), numel());
    });
  });
}

Tensor Tensor::to(DType dtype) const {
  Tensor out = empty(shape_, dtype, Device::cpu);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(Device device) const {
  Tensor out = empty(shape_, dtype_, device);
  out.copy_from(*this);
  return out;
}

double Tensor::item(std::int64_t i) const {
  RT_ASSERT(device_ == Device::cpu && i >= 0 && i < numel());
  double value = 0;
  visit_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    const T v = reinterpret_cast<const T*>(data_)[i];
    if constexpr (std::is_same_v<T, bf16>)
      value = static_cast<float>(v);
    else
      value = static_cast<double>(v);
  });
  return value;
}

void require_shape(const Tensor& t, const Shape& shape, const char* what) {
  RT_REQUIRE(t.shape() == shape, what, " has shape ", shape_str(t.shape()), ", expected ",
             shape_str(shape));
}

void require_same_type(const Tensor& first, std::initializer_list<const Tensor*> others,
                       const char* op) {
  for (const Tensor* t : others) {
    RT_REQUIRE(t->dtype() == first.dtype() && t->device() == first.device(), op,
               ": operands mix ", dtype_name(first.dtype()), "/", device_name(first.device()),
               " with ", dtype_name(t->dtype()), "/", device_name(t->device()));
  }
}

}  // namespace ratrain
