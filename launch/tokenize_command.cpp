// `ratrain tokenize --input TEXT --output DIR [--tokenizer byte|sentencepiece]
// [--spm-model FILE] [--val-fraction F]`: one document per non-empty line, each
// followed by EOS, into DIR/train.h5 and DIR/val.h5. A document goes to validation
// when a counter-based draw keyed by its line number falls below F, so the split
// does not depend on file order or on how many documents precede it.
#include <fstream>

#include "io/token_dataset.hpp"
#include "io/tokenizer.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"
#include "launch/run_setup.hpp"
#include "runtime/log.hpp"
#include "runtime/rng.hpp"

namespace ratrain {

int tokenize_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse(
      "tokenize", args,
      {{"input", true, "text file, one document per line"},
       {"output", true, "output folder for train.h5 and val.h5"},
       {"tokenizer", true, "byte (default) or sentencepiece"},
       {"spm-model", true, "SentencePiece model file (for --tokenizer sentencepiece)"},
       {"val-fraction", true, "fraction of documents held out (default 0.01)"}});
  const auto input = cl.flag("input");
  const auto output = cl.flag("output");
  RT_REQUIRE(input && output, "ratrain tokenize needs --input TEXT and --output DIR");
  const double val_fraction = cl.real_flag_or("val-fraction", 0.01);
  RT_REQUIRE(val_fraction >= 0 && val_fraction < 1, "--val-fraction must be in [0, 1), got ",
             val_fraction);
  const auto tokenizer = make_tokenizer(cl.flag_or("tokenizer", "byte"), cl.flag_or("spm-model", ""));

  std::ifstream in(*input);
  RT_REQUIRE(in.good(), "cannot open --input '", *input, "'");
  const CounterRng split(0, "tokenize.val_split");
  std::vector<std::int32_t> train, val;
  std::int64_t docs = 0, line_no = 0, val_docs = 0;
  for (std::string line; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    const bool to_val = split.uniform(static_cast<std::uint64_t>(line_no)) < val_fraction;
    std::vector<std::int32_t>& out = to_val ? val : train;
    const auto ids = tokenizer->encode(line);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(tokenizer->eos_id());
    ++docs;
    val_docs += to_val;
    if (docs % 50000 == 0) log_info("tokenized ", docs, " documents");
  }
  RT_REQUIRE(docs > 0, "--input '", *input, "' has no non-empty lines");

  make_run_dir(*output);
  const std::string name = tokenizer->name();
  write_token_file(*output + "/train.h5", train, tokenizer->vocab_size(), tokenizer->eos_id(), name);
  write_token_file(*output + "/val.h5", val, tokenizer->vocab_size(), tokenizer->eos_id(), name);
  log_info("tokenized ", docs, " documents with the ", name, " tokenizer (vocabulary ",
           tokenizer->vocab_size(), "): ", train.size(), " training tokens in ", *output,
           "/train.h5, ", val.size(), " validation tokens (", val_docs, " documents) in ",
           *output, "/val.h5");
  return 0;
}

}  // namespace ratrain
