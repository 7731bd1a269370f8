// SentencePiece tokenizer over libsentencepiece, compiled in when CMake found it
// (RATRAIN_HAVE_SENTENCEPIECE); otherwise loading one is an error that says so.
#include "io/tokenizer.hpp"
#include "runtime/error.hpp"

#if RATRAIN_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>

#include <filesystem>

namespace ratrain {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& model_path) : path_(model_path) {
    RT_REQUIRE(std::filesystem::is_regular_file(model_path), "sentencepiece model '", model_path,
               "' not found");
    const auto status = processor_.Load(model_path);
    RT_REQUIRE(status.ok(), "cannot load sentencepiece model '", model_path,
               "': ", status.ToString());
  }

  std::vector<std::int32_t> encode(std::string_view text) const override {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    RT_REQUIRE(status.ok(), "sentencepiece model '", path_,
               "': encode failed: ", status.ToString());
    return {ids.begin(), ids.end()};
  }

  std::string decode(std::span<const std::int32_t> ids) const override {
    for (std::size_t i = 0; i < ids.size(); ++i)
      RT_REQUIRE(0 <= ids[i] && ids[i] < vocab_size(), "sentencepiece model '", path_, "': id ",
                 ids[i], " at position ", i, " is outside [0, ", vocab_size(), ")");
    std::string text;
    const auto status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    RT_REQUIRE(status.ok(), "sentencepiece model '", path_,
               "': decode failed: ", status.ToString());
    return text;
  }

  std::int64_t vocab_size() const override { return processor_.GetPieceSize(); }
  std::int32_t bos_id() const override { return processor_.bos_id(); }
  std::int32_t eos_id() const override { return processor_.eos_id(); }
  std::string name() const override {
    return "sentencepiece:" + std::filesystem::path(path_).filename().string();
  }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

bool sentencepiece_available() { return true; }

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path) {
  return std::make_unique<SentencePieceTokenizer>(model_path);
}

}  // namespace ratrain

#else

namespace ratrain {

bool sentencepiece_available() { return false; }

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path) {
  RT_FAIL("cannot load sentencepiece model '", model_path,
          "': this ratrain was built without SentencePiece (install libsentencepiece-dev "
          "and reconfigure CMake), or use tokenizer kind 'byte'");
}

}  // namespace ratrain

#endif
