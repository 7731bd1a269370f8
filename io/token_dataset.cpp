// TokenDataset: the HDF5 and .bin readers, id validation, and the token-file writer.
#include "io/token_dataset.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "io/h5.hpp"
#include "runtime/error.hpp"

namespace ratrain {
namespace {

constexpr const char* kTokens = "tokens";
constexpr std::int64_t kUint16Vocab = 65536;  // ids of a larger vocabulary need int32

bool is_bin_path(const std::string& path) {
  return std::filesystem::path(path).extension() == ".bin";
}

}  // namespace

class TokenDataset::Source {
 public:
  virtual ~Source() = default;
  // Reads tokens [begin, begin + count) (already range-checked) without validating ids.
  virtual void read(std::int64_t begin, std::int64_t count, std::int32_t* out) const = 0;
};

namespace {

class H5Source final : public TokenDataset::Source {
 public:
  explicit H5Source(h5::File file) : file_(std::move(file)) {}
  void read(std::int64_t begin, std::int64_t count, std::int32_t* out) const override {
    // HDF5 converts uint16 (or int32) on disk to i32 in memory.
    const Tensor ids = file_.read_rows(kTokens, begin, count, DType::i32);
    std::memcpy(out, ids.raw(), ids.nbytes());
  }

 private:
  h5::File file_;
};

class BinSource final : public TokenDataset::Source {
 public:
  BinSource(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  BinSource(const BinSource&) = delete;
  BinSource& operator=(const BinSource&) = delete;
  ~BinSource() override { ::close(fd_); }

  void read(std::int64_t begin, std::int64_t count, std::int32_t* out) const override {
    std::vector<unsigned char> bytes(static_cast<std::size_t>(count) * 2);
    std::size_t done = 0;
    while (done < bytes.size()) {  // pread may return fewer bytes than asked
      const ssize_t got = ::pread(fd_, bytes.data() + done, bytes.size() - done,
                                  static_cast<off_t>(begin * 2 + static_cast<std::int64_t>(done)));
      if (got < 0 && errno == EINTR) continue;
      RT_REQUIRE(got > 0, "cannot read tokens [", begin, ", ", begin + count, ") of '", path_,
                 "': ", got < 0 ? std::strerror(errno) : "unexpected end of file");
      done += static_cast<std::size_t>(got);
    }
    // Little-endian on disk, whatever the host's byte order.
    for (std::int64_t i = 0; i < count; ++i)
      out[i] = bytes[2 * i] | (static_cast<std::int32_t>(bytes[2 * i + 1]) << 8);
  }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

TokenDataset TokenDataset::open(const std::string& path,
                                std::optional<std::int64_t> vocab_size_if_bin) {
  RT_REQUIRE(std::filesystem::is_regular_file(path), "token file '", path, "' not found");
  TokenDataset data;
  data.path_ = path;

  if (is_bin_path(path)) {
    RT_REQUIRE(vocab_size_if_bin.has_value(), "token file '", path,
               "' is a headerless .bin stream: its vocabulary size must be given "
               "(config key data.bin_vocab_size)");
    data.vocab_size_ = *vocab_size_if_bin;
    RT_REQUIRE(0 < data.vocab_size_ && data.vocab_size_ <= kUint16Vocab, "token file '", path,
               "': a .bin stream holds uint16 ids, so its vocabulary size must be in [1, ",
               kUint16Vocab, "] (got ", data.vocab_size_, ")");
    const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
    RT_REQUIRE(bytes % 2 == 0, "token file '", path, "' has an odd size of ", bytes,
               " bytes; a .bin stream is little-endian uint16 ids");
    data.size_ = bytes / 2;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    RT_REQUIRE(fd >= 0, "cannot open token file '", path, "': ", std::strerror(errno));
    data.source_ = std::make_shared<BinSource>(path, fd);
    return data;
  }

  h5::File file(path, h5::Mode::read);
  RT_REQUIRE(file.exists(kTokens), "token file '", path, "' has no dataset '", kTokens,
             "' (an HDF5 token file holds a 1-D integer dataset 'tokens' and attributes "
             "vocab_size and eos_id; `ratrain tokenize` writes one)");
  const Shape shape = file.shape(kTokens);
  RT_REQUIRE(shape.size() == 1 && file.is_integer(kTokens), "token file '", path,
             "': dataset 'tokens' must be a 1-D integer array (it has shape ", shape_str(shape),
             file.is_integer(kTokens) ? "" : " and non-integer elements", ")");
  data.size_ = shape[0];
  data.vocab_size_ = file.read_int_attribute("vocab_size");
  RT_REQUIRE(0 < data.vocab_size_ && data.vocab_size_ <= std::numeric_limits<std::int32_t>::max(),
             "token file '", path, "': attribute vocab_size = ", data.vocab_size_,
             " is not a valid vocabulary size");
  const std::int64_t eos = file.read_int_attribute("eos_id");
  RT_REQUIRE(-1 <= eos && eos < data.vocab_size_, "token file '", path,
             "': attribute eos_id = ", eos, " is outside [-1, vocab_size = ", data.vocab_size_,
             ")");
  data.eos_id_ = static_cast<std::int32_t>(eos);
  if (file.has_attribute("tokenizer")) data.tokenizer_ = file.read_string_attribute("tokenizer");
  data.source_ = std::make_shared<H5Source>(std::move(file));
  return data;
}

void TokenDataset::read(std::int64_t begin, std::int64_t count, std::int32_t* out) const {
  RT_REQUIRE(begin >= 0 && count >= 0 && begin + count <= size_, "tokens [", begin, ", ",
             begin + count, ") are outside '", path_, "', which holds ", size_, " tokens");
  if (count == 0) return;  // `out` may be null then
  source_->read(begin, count, out);
  for (std::int64_t i = 0; i < count; ++i) {
    RT_REQUIRE(out[i] >= 0, "token id ", out[i], " at position ", begin + i, " of '", path_,
               "' is negative");
    RT_REQUIRE(out[i] < vocab_size_, "token id ", out[i], " at position ", begin + i, " of '",
               path_, "' is >= vocab_size ", vocab_size_);
  }
}

void write_token_file(const std::string& path, const std::vector<std::int32_t>& tokens,
                      std::int64_t vocab_size, std::int32_t eos_id,
                      const std::string& tokenizer_name) {
  RT_REQUIRE(0 < vocab_size && vocab_size <= std::numeric_limits<std::int32_t>::max(),
             "token file '", path, "': vocab_size ", vocab_size, " is not a valid vocabulary size");
  RT_REQUIRE(-1 <= eos_id && eos_id < vocab_size, "token file '", path, "': eos_id ", eos_id,
             " is outside [-1, vocab_size = ", vocab_size, ")");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    RT_REQUIRE(0 <= tokens[i] && tokens[i] < vocab_size, "token file '", path, "': token id ",
               tokens[i], " at position ", i, " is outside [0, vocab_size = ", vocab_size, ")");

  // Contiguous and uncompressed: training reads T+1 tokens at random places, and with
  // compression every such read inflates a whole chunk (measured 0.34 ms per 4097-token
  // sample with 64 Ki-token deflated chunks) for a modest saving of disk.
  h5::File file(path, h5::Mode::truncate);
  const Shape shape = {static_cast<std::int64_t>(tokens.size())};
  if (vocab_size <= kUint16Vocab) {
    const std::vector<std::uint16_t> narrow(tokens.begin(), tokens.end());
    file.write_raw(kTokens, H5T_NATIVE_UINT16, narrow.data(), shape);
  } else {
    file.write_raw(kTokens, H5T_NATIVE_INT32, tokens.data(), shape);
  }
  file.write_int_attribute("vocab_size", vocab_size);
  file.write_int_attribute("eos_id", eos_id);
  file.write_string_attribute("tokenizer", tokenizer_name);
}

}  // namespace ratrain
