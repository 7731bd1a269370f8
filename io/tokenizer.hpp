// Tokenizers: text <-> token ids, behind one interface so that `ratrain tokenize` and
// the data pipeline do not care which one a run uses.
//
// encode() adds no special tokens: the caller decides where BOS/EOS go (the token
// files of RATPLUS.md put one EOS after each document). decode() drops special
// tokens (pad, BOS, EOS), as SentencePiece does for its control symbols.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ratrain {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<std::int32_t> encode(std::string_view text) const = 0;
  // Ids outside [0, vocab_size()) are an error naming the id and its position.
  virtual std::string decode(std::span<const std::int32_t> ids) const = 0;
  virtual std::int64_t vocab_size() const = 0;
  virtual std::int32_t bos_id() const = 0;
  virtual std::int32_t eos_id() const = 0;
  // Identifies the tokenizer in token files and run metadata, e.g. "byte" or
  // "sentencepiece:tokenizer.model".
  virtual std::string name() const = 0;
};

// Raw UTF-8 bytes: pad 0, BOS 1, EOS 2, byte b -> b + 3; 259 ids. Needs no model file,
// so tests and demos run anywhere.
class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr std::int32_t kPad = 0, kBos = 1, kEos = 2;
  static constexpr std::int32_t kFirstByte = 3;  // id of byte 0x00
  static constexpr std::int64_t kVocabSize = kFirstByte + 256;

  std::vector<std::int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const std::int32_t> ids) const override;
  std::int64_t vocab_size() const override { return kVocabSize; }
  std::int32_t bos_id() const override { return kBos; }
  std::int32_t eos_id() const override { return kEos; }
  std::string name() const override { return "byte"; }
};

// Whether this build links libsentencepiece (cmake/Dependencies.cmake).
bool sentencepiece_available();

// A SentencePiece model file (e.g. LLaMA-2's tokenizer.model: 32000 ids, BOS 1, EOS 2,
// taken from the model). A missing or unreadable file is an error naming the path; in a
// build without SentencePiece every call is an error saying so.
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_path);

// kind "byte" (model_path unused) or "sentencepiece" (model_path required). An unknown
// kind is an error listing the valid ones.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& model_path);

}  // namespace ratrain
