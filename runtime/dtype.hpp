// Element types and devices of ratrain tensors.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace ratrain {

enum class DType : std::uint8_t { f32, f64, bf16, i32 };
enum class Device : std::uint8_t { cpu, cuda };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::i32: return 4;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
  }
  return "?";
}

// Parses "f32", "f64", "bf16"; throws ratrain::Error naming the valid choices.
DType parse_dtype(std::string_view name);

constexpr std::string_view device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }
// Parses "cpu", "cuda"; throws ratrain::Error naming the valid choices.
Device parse_device(std::string_view name);

// bfloat16 storage type: the upper 16 bits of an IEEE float, rounded to nearest even.
struct bf16 {
  std::uint16_t bits = 0;

  bf16() = default;
  explicit bf16(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN stays a quiet NaN
      bits = static_cast<std::uint16_t>((u >> 16) | 0x40u);
      return;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    bits = static_cast<std::uint16_t>(u >> 16);
  }
  explicit operator float() const {
    std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<bf16>() { return DType::bf16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }

}  // namespace ratrain
