// h5::File: round trips, hyperslab reads, attributes, the golden fixture, and errors
// that name the file and the object.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "io/h5.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;
using test::TempDir;

template <typename T>
Tensor iota_tensor(Shape shape, T start, T step) {
  Tensor t = Tensor::empty(std::move(shape), dtype_of<T>());
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = start + step * static_cast<T>(i);
  return t;
}

void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.item(i), b.item(i)) << "element " << i;
}

TEST(H5, RoundTripsEachDtypeAndCreatesGroups) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  const Tensor f32 = iota_tensor<float>({3, 4}, 0.25f, 1.5f);
  const Tensor f64 = iota_tensor<double>({5}, -1.0 / 3, 0.1);
  const Tensor i32 = iota_tensor<std::int32_t>({2, 3, 2}, -7, 3);
  Tensor scalar = Tensor::empty({}, DType::f64);
  scalar.data<double>()[0] = 5.76791903867728;
  {
    h5::File file(path, h5::Mode::truncate);
    file.write("params/a/f32", f32);
    file.write("params/b", f64);
    file.write("/ints", i32);
    file.write("loss", scalar);
  }
  const h5::File file(path, h5::Mode::read);
  expect_equal(file.read("params/a/f32", DType::f32), f32);
  expect_equal(file.read("params/b", DType::f64), f64);
  expect_equal(file.read("ints", DType::i32), i32);
  expect_equal(file.read("loss", DType::f64), scalar);
  EXPECT_EQ(file.shape("ints"), (Shape{2, 3, 2}));
  EXPECT_EQ(file.shape("loss"), Shape{});
  EXPECT_TRUE(file.exists("params/a/f32"));
  EXPECT_TRUE(file.exists("/params/a"));
  EXPECT_FALSE(file.exists("params/c"));
  EXPECT_FALSE(file.exists("missing/deeper/path"));
  EXPECT_FALSE(file.exists("ints/below_a_dataset"));
  EXPECT_EQ(file.list("params"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(file.is_integer("ints"));
  EXPECT_FALSE(file.is_integer("params/b"));
}

TEST(H5, ConvertsOnRead) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  const Tensor f64 = iota_tensor<double>({4}, 0.5, 1.0);
  const std::vector<std::uint16_t> tokens = {0, 1, 65535, 40000};
  {
    h5::File file(path, h5::Mode::truncate);
    file.write("f64", f64);
    file.write_raw("u16", H5T_NATIVE_UINT16, tokens.data(), {4});
  }
  const h5::File file(path, h5::Mode::read);
  const Tensor as_f32 = file.read("f64", DType::f32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(as_f32.data<float>()[i], 0.5f + i);
  const Tensor as_i32 = file.read("u16", DType::i32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(as_i32.data<std::int32_t>()[i], tokens[i]);
}

TEST(H5, ReadsRowsFromTheMiddle) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  const Tensor all = iota_tensor<std::int32_t>({10, 3}, 0, 1);
  {
    h5::File file(path, h5::Mode::truncate);
    const std::int64_t chunk_rows = 4;  // the read below crosses a chunk boundary
    file.write_raw("x", H5T_NATIVE_INT32, all.raw(), all.shape(), chunk_rows);
  }
  const h5::File file(path, h5::Mode::read);
  expect_equal(file.read_rows("x", 3, 4, DType::i32), all.rows(3, 7));
  EXPECT_EQ(file.read_rows("x", 10, 0, DType::i32).shape(), (Shape{0, 3}));
  expect_contains(error_of([&] { file.read_rows("x", 8, 3, DType::i32); }),
                  {path, "'x'", "[8, 11)", "(10, 3)"});
}

TEST(H5, AttributesRoundTripAndReplace) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  {
    h5::File file(path, h5::Mode::truncate);
    file.write("d", iota_tensor<float>({2}, 0, 1));
    file.write_string_attribute("config", "{\"d_model\": 64} ünïcode");
    file.write_string_attribute("mode", "sparse");
    file.write_string_attribute("mode", "dense");  // replaces
    file.write_int_attribute("step", -1234567890123);
    file.write_real_attribute("lr", 8e-4, "d");
  }
  const h5::File file(path, h5::Mode::read);
  EXPECT_EQ(file.read_string_attribute("config"), "{\"d_model\": 64} ünïcode");
  EXPECT_EQ(file.read_string_attribute("mode"), "dense");
  EXPECT_EQ(file.read_int_attribute("step"), -1234567890123);
  EXPECT_EQ(file.read_real_attribute("lr", "d"), 8e-4);
  EXPECT_EQ(file.read_real_attribute("step"), -1234567890123.0);  // ints read as reals
  EXPECT_TRUE(file.has_attribute("lr", "d"));
  EXPECT_FALSE(file.has_attribute("lr"));
  expect_contains(error_of([&] { file.read_string_attribute("nope"); }),
                  {path, "attribute 'nope' of '/' not found"});
  expect_contains(error_of([&] { file.read_int_attribute("mode"); }),
                  {path, "attribute 'mode'", "not an integer"});
}

TEST(H5, ReadsFixedLengthStringAttributes) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  {
    // Written with the C API directly: h5::File itself writes variable-length strings.
    h5::File file(path, h5::Mode::truncate);
    const h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    ASSERT_GE(H5Tset_size(type.get(), 8), 0);
    const h5::Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    const h5::Handle attr(
        H5Acreate2(file.id(), "tokenizer", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    const char text[8] = {'b', 'y', 't', 'e', '\0', '\0', '\0', '\0'};
    ASSERT_GE(H5Awrite(attr.get(), type.get(), text), 0);
  }
  EXPECT_EQ(h5::File(path, h5::Mode::read).read_string_attribute("tokenizer"), "byte");
}

TEST(H5, ReadsTheGoldenFixture) {
  const h5::File file(std::string(RATRAIN_FIXTURES_DIR) + "/dense.h5", h5::Mode::read);
  EXPECT_DOUBLE_EQ(file.read("loss", DType::f64).item(), 5.76791903867728);
  EXPECT_EQ(file.shape("input_ids"), (Shape{2, 64}));
  const Tensor ids = file.read("input_ids", DType::i32);
  EXPECT_EQ(ids.shape(), (Shape{2, 64}));
  const std::string config = file.read_string_attribute("config");
  ASSERT_FALSE(config.empty());
  EXPECT_EQ(config.front(), '{');
  expect_contains(config, {"\"vocab_size\"", "\"d_model\"", "\"dilation\""});
  EXPECT_EQ(file.read_string_attribute("mode"), "dense");
  const auto params = file.list("params");
  EXPECT_NE(std::find(params.begin(), params.end(), "embedding.wte.weight"), params.end());
  EXPECT_TRUE(std::is_sorted(params.begin(), params.end()));
}

TEST(H5, MissingFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("absent.h5");
  expect_contains(error_of([&] { h5::File(path, h5::Mode::read); }), {path, "not found"});
}

TEST(H5, CorruptFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("garbage.h5");
  std::ofstream(path) << "this is not an HDF5 file, just some garbage bytes\n";
  expect_contains(error_of([&] { h5::File(path, h5::Mode::read); }),
                  {path, "not a valid HDF5 file (corrupt or truncated)"});
}

TEST(H5, TruncatedFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("truncated.h5");
  {
    h5::File file(path, h5::Mode::truncate);
    file.write("big", iota_tensor<double>({4096}, 0, 1));
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  expect_contains(error_of([&] { h5::File(path, h5::Mode::read); }),
                  {path, "not a valid HDF5 file (corrupt or truncated)"});
}

TEST(H5, MissingDatasetIsNamed) {
  const std::string path = std::string(RATRAIN_FIXTURES_DIR) + "/dense.h5";
  const h5::File file(path, h5::Mode::read);
  expect_contains(error_of([&] { file.read("grads/foo", DType::f32); }),
                  {"HDF5 file '" + path + "': dataset 'grads/foo' not found"});
  expect_contains(error_of([&] { file.shape("nothing/here"); }), {path, "'nothing/here'"});
  expect_contains(error_of([&] { file.list("nogroup"); }), {path, "group 'nogroup' not found"});
}

TEST(H5, RejectsBadWrites) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  h5::File file(path, h5::Mode::truncate);
  file.write("x", iota_tensor<float>({2}, 0, 1));
  expect_contains(error_of([&] { file.write("x", iota_tensor<float>({2}, 0, 1)); }),
                  {path, "dataset 'x' already exists"});
  expect_contains(error_of([&] { file.write("b", Tensor::empty({2}, DType::bf16)); }),
                  {path, "'b'", "bf16"});
  expect_contains(error_of([&] { h5::File(dir.file("no/such/dir/t.h5"), h5::Mode::truncate); }),
                  {dir.file("no/such/dir/t.h5"), "cannot create"});
}

}  // namespace
}  // namespace ratrain
