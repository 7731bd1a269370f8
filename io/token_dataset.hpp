// A read-only stream of token ids on disk, the training data of RATPLUS.md.
//
// Two formats:
// - HDF5 token file (any path not ending in ".bin"): a 1-D integer dataset `tokens`
//   (uint16 when the vocabulary fits, else int32) and root attributes `vocab_size`
//   (int), `eos_id` (int, -1 = none) and optionally `tokenizer` (string). Written by
//   write_token_file (`ratrain tokenize`).
// - ".bin": the authors' flat stream of little-endian uint16 with no header, so the
//   caller supplies the vocabulary size and eos_id() is -1 (unknown).
//
// Invariants: reads touch only the requested range on disk (HDF5 hyperslabs, pread),
// so a dataset of any size can be opened; every id handed out is checked to lie in
// [0, vocab_size), and a bad one is an error naming the file, its position and value.
// A TokenDataset is cheap to copy (copies share the open file). Reads of HDF5 files
// must not run concurrently (the HDF5 library build is not thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ratrain {

class TokenDataset {
 public:
  // `vocab_size_if_bin` is required for ".bin" streams and ignored for HDF5 files,
  // which record their own. A missing or malformed file is an error naming the path.
  static TokenDataset open(const std::string& path,
                           std::optional<std::int64_t> vocab_size_if_bin = std::nullopt);

  const std::string& path() const { return path_; }
  std::int64_t size() const { return size_; }  // tokens
  std::int64_t vocab_size() const { return vocab_size_; }
  std::int32_t eos_id() const { return eos_id_; }                   // -1: not recorded
  const std::string& tokenizer_name() const { return tokenizer_; }  // "": not recorded

  // out[i] = token at position begin + i, for i < count. A range outside [0, size())
  // or an id outside [0, vocab_size()) is an error naming the file.
  void read(std::int64_t begin, std::int64_t count, std::int32_t* out) const;

  // The format-specific reader behind read() (token_dataset.cpp).
  class Source;

 private:
  TokenDataset() = default;

  std::string path_;
  std::int64_t size_ = 0;
  std::int64_t vocab_size_ = 0;
  std::int32_t eos_id_ = -1;
  std::string tokenizer_;
  std::shared_ptr<const Source> source_;
};

// Writes an HDF5 token file (format above): uint16 ids when vocab_size <= 65536, else
// int32, stored contiguously. Every token must lie in [0, vocab_size) and eos_id in
// [-1, vocab_size).
void write_token_file(const std::string& path, const std::vector<std::int32_t>& tokens,
                      std::int64_t vocab_size, std::int32_t eos_id,
                      const std::string& tokenizer_name);

}  // namespace ratrain
