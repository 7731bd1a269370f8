#include "runtime/dtype.hpp"

#include "runtime/error.hpp"

namespace ratrain {

DType parse_dtype(std::string_view name) {
  if (name == "f32") return DType::f32;
  if (name == "f64") return DType::f64;
  if (name == "bf16") return DType::bf16;
  RT_FAIL("unknown dtype '", name, "' (valid: f32, f64, bf16)");
}

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  RT_FAIL("unknown device '", name, "' (valid: cpu, cuda)");
}

}  // namespace ratrain
