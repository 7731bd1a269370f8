// The HDF5 wrapper features checkpoints rest on (io/h5.hpp): virtual datasets, strided
// hyperslab reads, integer-list attributes, the stored float type, and HDF5 calls from
// two threads at once (a background write while the other thread reads).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include "io/h5.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using test::expect_contains;
using test::TempDir;

Tensor iota(Shape shape, float start) {
  Tensor t = Tensor::empty(std::move(shape), DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

TEST(CheckpointH5, VirtualDatasetAssemblesSourcesAndReadsHolesAsNaN) {
  TempDir dir;
  {
    h5::File a(dir.file("a.h5"), h5::Mode::truncate);
    a.write("piece", iota({6}, 0));  // rows 0 and 2 of the virtual (4, 3)
    h5::File b(dir.file("b.h5"), h5::Mode::truncate);
    b.write("piece", iota({3}, 100));  // row 3
  }
  {
    h5::File index(dir.file("index.h5"), h5::Mode::truncate);
    const h5::Hyperslab rows_0_and_2{
        .start = {0, 0}, .stride = {2, 1}, .count = {2, 1}, .block = {1, 3}};
    const h5::Hyperslab row_3{
        .start = {3, 0}, .stride = {1, 1}, .count = {1, 1}, .block = {1, 3}};
    index.write_virtual("g/x", DType::f32, {4, 3},
                        {{"a.h5", "/piece", {6}, h5::Hyperslab::range(0, 6), rows_0_and_2},
                         {"b.h5", "/piece", {3}, h5::Hyperslab::range(0, 3), row_3}});
  }
  // Read from another working directory: sources are found beside the virtual file.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  const Tensor x = h5::File(dir.file("index.h5"), h5::Mode::read).read("g/x", DType::f32);
  std::filesystem::current_path(cwd);
  const float want[12] = {0, 1, 2, NAN, NAN, NAN, 3, 4, 5, 100, 101, 102};
  for (int i = 0; i < 12; ++i) {
    if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(x.data<float>()[i])) << i;
    else EXPECT_EQ(x.data<float>()[i], want[i]) << i;
  }
  // A source file that has gone reads as NaN too: why checkpoints verify shards first.
  std::filesystem::remove(dir.file("b.h5"));
  const Tensor without_b = h5::File(dir.file("index.h5"), h5::Mode::read).read("g/x", DType::f32);
  EXPECT_TRUE(std::isnan(without_b.data<float>()[9]));
}

TEST(CheckpointH5, ReadsStridedHyperslabsInRowMajorOrder) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  h5::File(path, h5::Mode::truncate).write("x", iota({8, 2}, 0));
  const h5::File file(path, h5::Mode::read);
  // Rows 2-3 and 6-7 (the header's example of a TP part).
  Tensor out = Tensor::empty({4, 2}, DType::f32);
  file.read_hyperslab("x", {.start = {2, 0}, .stride = {4, 1}, .count = {2, 1}, .block = {2, 2}},
                      out);
  const float want[8] = {4, 5, 6, 7, 12, 13, 14, 15};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out.data<float>()[i], want[i]) << i;
  Tensor one = Tensor::empty({2}, DType::f32);
  expect_contains(error_of([&] {
                    file.read_hyperslab("x", {.start = {7, 0}, .stride = {1, 1}, .count = {1, 1},
                                              .block = {2, 1}},
                                        one);
                  }),
                  {path, "'x'", "outside", "(8, 2)"});
}

TEST(CheckpointH5, IntegerListAttributesAndFloatTypes) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  {
    h5::File file(path, h5::Mode::truncate);
    file.write("f", iota({2}, 0));
    file.write("d", Tensor::zeros({2}, DType::f64));
    file.write("i", Tensor::zeros({2}, DType::i32));
    file.write_ints_attribute("global_shape", {37, 16, 1LL << 40}, "f");
  }
  const h5::File file(path, h5::Mode::read);
  EXPECT_EQ(file.read_ints_attribute("global_shape", "f"),
            (std::vector<std::int64_t>{37, 16, 1LL << 40}));
  EXPECT_EQ(file.float_dtype("f"), DType::f32);
  EXPECT_EQ(file.float_dtype("d"), DType::f64);
  expect_contains(error_of([&] { file.float_dtype("i"); }), {path, "'i'", "floating-point"});
  expect_contains(error_of([&] { file.read_int_attribute("global_shape", "f"); }),
                  {path, "holds 3 values"});
}

TEST(CheckpointH5, TwoThreadsUseFilesAtOnce) {
  TempDir dir;
  const std::string reading = dir.file("tokens.h5");
  h5::File(reading, h5::Mode::truncate).write("x", iota({1000}, 0));
  // What a checkpoint write does (many datasets and attributes, one large dataset
  // written in slices) while the training thread reads tokens. A thread-safe HDF5
  // build (Debian's) serializes the calls itself; a serial build (the device image's)
  // relies on the wrapper's lock for it.
  constexpr int kDatasets = 300;
  const Tensor big = iota({20 << 20}, 0);  // 80 MiB: two slices
  std::thread writer([&] {
    h5::File file(dir.file("shard.h5"), h5::Mode::truncate);
    for (int i = 0; i < kDatasets; ++i) {
      const std::string name = "params/p" + std::to_string(i) + "/0";
      file.write(name, iota({16}, static_cast<float>(i)));
      file.write_int_attribute("crc32", i, name);
    }
    file.write("big", big);
  });
  const h5::File file(reading, h5::Mode::read);
  for (int i = 0; i < 3000; ++i)
    ASSERT_EQ(file.read_rows("x", i % 1000, 1, DType::f32).item(), i % 1000);
  writer.join();
  const h5::File shard(dir.file("shard.h5"), h5::Mode::read);
  for (int i = 0; i < kDatasets; ++i)
    ASSERT_EQ(shard.read_int_attribute("crc32", "params/p" + std::to_string(i) + "/0"), i);
  const Tensor back = shard.read("big", DType::f32);
  EXPECT_EQ(back.item(back.numel() - 1), big.item(big.numel() - 1));
}

}  // namespace
}  // namespace ratrain
