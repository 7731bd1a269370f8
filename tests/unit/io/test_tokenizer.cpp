// Tokenizers: the byte tokenizer's exact ids and round trips, the factory's errors.
#include <gtest/gtest.h>

#include "io/tokenizer.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;

TEST(ByteTokenizer, IdsAreBytesPlusThree) {
  const ByteTokenizer tok;
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.encode("A\n"), (std::vector<std::int32_t>{65 + 3, 10 + 3}));
  EXPECT_EQ(tok.encode(std::string_view("\0\xff", 2)), (std::vector<std::int32_t>{3, 258}));
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(ByteTokenizer, RoundTripsUtf8) {
  const ByteTokenizer tok;
  using namespace std::string_literals;
  const std::string text = "héllo, 世界 🙂\ttabs\nand\0nul"s;
  const auto ids = tok.encode(text);
  EXPECT_EQ(ids.size(), text.size());  // one id per UTF-8 byte
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(ByteTokenizer, DecodeDropsSpecialsAndRejectsBadIds) {
  const ByteTokenizer tok;
  const std::vector<std::int32_t> ids = {tok.bos_id(), 'h' + 3, 'i' + 3, tok.eos_id(), 0};
  EXPECT_EQ(tok.decode(ids), "hi");
  expect_contains(error_of([&] {
                    tok.decode(std::vector<std::int32_t>{4, 259});
                  }),
                  {"id 259 at position 1", "[0, 259)"});
  expect_contains(error_of([&] { tok.decode(std::vector<std::int32_t>{-1}); }), {"id -1"});
}

TEST(MakeTokenizer, Byte) {
  const auto tok = make_tokenizer("byte", "");
  EXPECT_EQ(tok->name(), "byte");
  EXPECT_EQ(tok->decode(tok->encode("xyz")), "xyz");
}

TEST(MakeTokenizer, UnknownKindListsValidKinds) {
  expect_contains(error_of([] { make_tokenizer("bpe", ""); }),
                  {"unknown tokenizer kind 'bpe'", "byte, sentencepiece"});
}

TEST(MakeTokenizer, SentencePieceNeedsAModel) {
  const std::string missing = "/nonexistent/dir/tokenizer.model";
  const std::string message = error_of([&] { make_tokenizer("sentencepiece", missing); });
  if (sentencepiece_available())
    expect_contains(message, {"sentencepiece model '" + missing + "' not found"});
  else
    expect_contains(message, {missing, "built without SentencePiece"});
  expect_contains(error_of([] { make_tokenizer("sentencepiece", ""); }), {"needs a model file"});
}

}  // namespace
}  // namespace ratrain
