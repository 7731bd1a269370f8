// ByteTokenizer and the tokenizer factory (SentencePiece lives in
// sentencepiece_tokenizer.cpp, the only file that includes its headers).
#include "io/tokenizer.hpp"

#include "runtime/error.hpp"

namespace ratrain {

std::vector<std::int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size());
  for (const char c : text) ids.push_back(kFirstByte + static_cast<unsigned char>(c));
  return ids;
}

std::string ByteTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    RT_REQUIRE(0 <= id && id < kVocabSize, "byte tokenizer: id ", id, " at position ", i,
               " is outside [0, ", kVocabSize, ")");
    if (id >= kFirstByte) text.push_back(static_cast<char>(id - kFirstByte));
  }
  return text;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& model_path) {
  if (kind == "byte") return std::make_unique<ByteTokenizer>();
  if (kind == "sentencepiece") {
    RT_REQUIRE(!model_path.empty(), "tokenizer 'sentencepiece' needs a model file path");
    return load_sentencepiece_tokenizer(model_path);
  }
  RT_FAIL("unknown tokenizer kind '", kind, "'; valid kinds: byte, sentencepiece");
}

}  // namespace ratrain
