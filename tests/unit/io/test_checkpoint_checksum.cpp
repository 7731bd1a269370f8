// Checksums of checkpoint datasets (io/checkpoint_format.hpp): the CRC-32 computed in
// slices on several threads and combined is zlib's CRC-32 of the whole buffer, for every
// length around the slice boundaries (what save writes, verify recomputes).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <vector>

#include "io/checkpoint_format.hpp"

namespace ratrain {
namespace {

std::uint32_t whole_crc(const std::vector<unsigned char>& bytes, std::size_t n) {
  return static_cast<std::uint32_t>(crc32_z(crc32_z(0, nullptr, 0), bytes.data(), n));
}

TEST(CheckpointChecksum, SlicesCombineToTheWholeBuffersCrc) {
  std::vector<unsigned char> bytes(10007);
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  constexpr std::size_t kSlice = 1000;
  const std::size_t lengths[] = {0, 1, kSlice, 2 * kSlice - 1, 2 * kSlice, 2 * kSlice + 1,
                                 5 * kSlice, bytes.size()};
  for (std::size_t n : lengths) {
    SCOPED_TRACE(n);
    EXPECT_EQ(crc32_in_slices(bytes.data(), n, kSlice), whole_crc(bytes, n));
  }
}

TEST(CheckpointChecksum, TensorChecksumIsTheCrcOfItsBytes) {
  Tensor t = Tensor::empty({3, 5}, DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = 0.5f * static_cast<float>(i) - 2.0f;
  std::vector<unsigned char> bytes(t.nbytes());
  std::memcpy(bytes.data(), t.raw(), t.nbytes());
  EXPECT_EQ(checksum_of(t), whole_crc(bytes, bytes.size()));
}

}  // namespace
}  // namespace ratrain
