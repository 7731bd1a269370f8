// TokenDataset: HDF5 and .bin round trips, hyperslab reads, id and range validation.
#include <gtest/gtest.h>

#include <fstream>

#include "io/h5.hpp"
#include "io/token_dataset.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;
using test::TempDir;

// A deterministic token stream with ids in [0, vocab).
std::vector<std::int32_t> make_tokens(std::int64_t n, std::int64_t vocab) {
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    tokens[i] = static_cast<std::int32_t>((i * 7919 + 13) % vocab);
  return tokens;
}

std::vector<std::int32_t> read(const TokenDataset& data, std::int64_t begin, std::int64_t count) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(count), -1);
  data.read(begin, count, out.data());
  return out;
}

std::vector<std::int32_t> slice(const std::vector<std::int32_t>& v, std::int64_t begin,
                                std::int64_t count) {
  return {v.begin() + begin, v.begin() + begin + count};
}

// The authors' format: little-endian uint16, no header.
void write_bin(const std::string& path, const std::vector<std::int32_t>& tokens) {
  std::ofstream out(path, std::ios::binary);
  for (const std::int32_t t : tokens) {
    const char bytes[2] = {static_cast<char>(t & 0xff), static_cast<char>((t >> 8) & 0xff)};
    out.write(bytes, 2);
  }
}

TEST(TokenDataset, Hdf5RoundTripAsUint16) {
  TempDir dir;
  const std::string path = dir.file("tokens.h5");
  const auto tokens = make_tokens(150000, 32000);
  write_token_file(path, tokens, 32000, 2, "sentencepiece:tokenizer.model");

  const TokenDataset data = TokenDataset::open(path);
  EXPECT_EQ(data.size(), 150000);
  EXPECT_EQ(data.vocab_size(), 32000);
  EXPECT_EQ(data.eos_id(), 2);
  EXPECT_EQ(data.tokenizer_name(), "sentencepiece:tokenizer.model");
  EXPECT_EQ(read(data, 0, data.size()), tokens);
  EXPECT_EQ(read(data, 65530, 4097), slice(tokens, 65530, 4097));  // a hyperslab in the middle
  EXPECT_EQ(read(data, 149999, 1), slice(tokens, 149999, 1));
  EXPECT_TRUE(read(data, 5, 0).empty());

  const h5::File file(path, h5::Mode::read);
  const h5::Handle d(H5Dopen2(file.id(), "tokens", H5P_DEFAULT), H5Dclose);
  const h5::Handle type(H5Dget_type(d.get()), H5Tclose);
  EXPECT_EQ(H5Tget_size(type.get()), 2u);  // stored as uint16
}

TEST(TokenDataset, Hdf5RoundTripAsInt32ForLargeVocabularies) {
  TempDir dir;
  const std::string path = dir.file("tokens.h5");
  const auto tokens = make_tokens(1000, 128000);
  write_token_file(path, tokens, 128000, -1, "byte");
  const TokenDataset data = TokenDataset::open(path, 32000);  // the .bin vocab is ignored
  EXPECT_EQ(data.vocab_size(), 128000);
  EXPECT_EQ(data.eos_id(), -1);
  EXPECT_EQ(read(data, 0, 1000), tokens);
  EXPECT_EQ(read(data, 400, 17), slice(tokens, 400, 17));
}

TEST(TokenDataset, BinRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("train.bin");
  const auto tokens = make_tokens(5000, 65536);  // uses both bytes of every id
  write_bin(path, tokens);
  const TokenDataset data = TokenDataset::open(path, 65536);
  EXPECT_EQ(data.size(), 5000);
  EXPECT_EQ(data.vocab_size(), 65536);
  EXPECT_EQ(data.eos_id(), -1);
  EXPECT_EQ(data.tokenizer_name(), "");
  EXPECT_EQ(read(data, 0, 5000), tokens);
  EXPECT_EQ(read(data, 1234, 999), slice(tokens, 1234, 999));
}

TEST(TokenDataset, IdAtOrAboveVocabIsNamedWithItsPosition) {
  TempDir dir;
  const std::string bin = dir.file("x.bin");
  auto tokens = make_tokens(200, 32000);
  tokens[123] = 40000;
  write_bin(bin, tokens);
  const TokenDataset data = TokenDataset::open(bin, 32000);
  EXPECT_EQ(read(data, 0, 123), slice(tokens, 0, 123));  // the bad id is outside this range
  expect_contains(error_of([&] { read(data, 100, 50); }),
                  {"token id 40000 at position 123 of '" + bin + "' is >= vocab_size 32000"});

  // The same check on an HDF5 file (written by hand: write_token_file refuses bad ids).
  const std::string h5_path = dir.file("x.h5");
  {
    h5::File file(h5_path, h5::Mode::truncate);
    file.write_raw("tokens", H5T_NATIVE_INT32, tokens.data(), {200});
    file.write_int_attribute("vocab_size", 32000);
    file.write_int_attribute("eos_id", 2);
  }
  expect_contains(error_of([&] { read(TokenDataset::open(h5_path), 0, 200); }),
                  {"token id 40000 at position 123 of '" + h5_path + "' is >= vocab_size 32000"});
}

TEST(TokenDataset, RangeErrorsNameFileAndSize) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  write_token_file(path, make_tokens(100, 259), 259, 2, "byte");
  const TokenDataset data = TokenDataset::open(path);
  expect_contains(error_of([&] { read(data, 99, 2); }),
                  {"tokens [99, 101)", path, "holds 100 tokens"});
  expect_contains(error_of([&] { read(data, -1, 1); }), {"tokens [-1, 0)", path});
}

TEST(TokenDataset, OpenErrors) {
  TempDir dir;
  const std::string missing = dir.file("missing.h5");
  expect_contains(error_of([&] { TokenDataset::open(missing); }),
                  {"token file '" + missing + "' not found"});

  const std::string bin = dir.file("odd.bin");
  std::ofstream(bin) << "abc";
  expect_contains(error_of([&] { TokenDataset::open(bin); }), {bin, "vocabulary size"});
  expect_contains(error_of([&] { TokenDataset::open(bin, 32000); }), {bin, "odd size of 3 bytes"});
  expect_contains(error_of([&] { TokenDataset::open(bin, 70000); }), {bin, "[1, 65536]"});

  const std::string no_tokens = dir.file("no_tokens.h5");
  {
    h5::File file(no_tokens, h5::Mode::truncate);
    file.write_int_attribute("vocab_size", 10);
  }
  expect_contains(error_of([&] { TokenDataset::open(no_tokens); }),
                  {no_tokens, "no dataset 'tokens'"});

  const std::string no_vocab = dir.file("no_vocab.h5");
  {
    h5::File file(no_vocab, h5::Mode::truncate);
    const std::vector<std::int32_t> ids = {1, 2, 3};
    file.write_raw("tokens", H5T_NATIVE_INT32, ids.data(), {3});
  }
  expect_contains(error_of([&] { TokenDataset::open(no_vocab); }),
                  {no_vocab, "attribute 'vocab_size' of '/' not found"});
}

TEST(TokenDataset, WriterValidates) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  expect_contains(error_of([&] {
                    write_token_file(path, {1, 2, 300}, 259, 2, "byte");
                  }),
                  {path, "token id 300 at position 2"});
  expect_contains(error_of([&] { write_token_file(path, {1}, 259, 259, "byte"); }),
                  {path, "eos_id 259"});
}

}  // namespace
}  // namespace ratrain
