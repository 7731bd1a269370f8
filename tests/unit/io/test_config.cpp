// Config: resolution order, value kinds, the error messages, and the INI/JSON writers.
#include <gtest/gtest.h>

#include <fstream>

#include "io/config.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;
using test::TempDir;

const std::vector<ConfigKey>& schema() {
  using K = ValueKind;
  static const std::vector<ConfigKey> keys = {
      {"model.d_model", K::integer, "128", "model width d"},
      {"model.rope_base", K::real, "10000", "RoPE base"},
      {"model.dilation", K::int_list, "64", "D, one value or one per layer"},
      {"train.seq_len", K::integer, "256", "tokens per sample"},
      {"train.recompute", K::boolean, "false", "recompute activations"},
      {"train.name", K::string, "run", "a \"quoted\" help"},
      {"model.initial", K::int_list, "", "interleaved: written back under [model]"},
  };
  return keys;
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsWithoutFileOrOverrides) {
  const Config c = Config::load("", {}, schema());
  EXPECT_EQ(c.get_int("model.d_model"), 128);
  EXPECT_EQ(c.get_real("model.rope_base"), 10000.0);
  EXPECT_EQ(c.get_int_list("model.dilation"), (std::vector<std::int64_t>{64}));
  EXPECT_TRUE(c.get_int_list("model.initial").empty());
  EXPECT_FALSE(c.get_bool("train.recompute"));
  EXPECT_EQ(c.get_string("train.name"), "run");
}

TEST(Config, FileThenOverridesWin) {
  TempDir dir;
  const std::string path = write_file(dir, "c.ini",
                                      "# comment\n"
                                      "[model]\n"
                                      "d_model = 512\n"
                                      "dilation = 64, 16,4\n"
                                      "; another comment\n"
                                      "[train]\n"
                                      "seq_len = 1024\n"
                                      "recompute = YES\n"
                                      "name = my run = first\n");
  const Config c = Config::load(
      path, {"train.seq_len=2048", " model.rope_base = 5e5 ", "train.seq_len=4096", "train.name="},
      schema());
  EXPECT_EQ(c.get_int("model.d_model"), 512);
  EXPECT_EQ(c.get_int_list("model.dilation"), (std::vector<std::int64_t>{64, 16, 4}));
  EXPECT_EQ(c.get_int("train.seq_len"), 4096);  // the last override wins
  EXPECT_EQ(c.get_real("model.rope_base"), 5e5);
  EXPECT_TRUE(c.get_bool("train.recompute"));
  EXPECT_EQ(c.get_string("train.name"), "");
  EXPECT_EQ(Config::load(path, {}, schema()).get_string("train.name"), "my run = first");
}

TEST(Config, BooleanSpellings) {
  for (const char* yes : {"true", "True", "1", "yes", "on"})
    EXPECT_TRUE(Config::load("", {std::string("train.recompute=") + yes}, schema())
                    .get_bool("train.recompute"));
  for (const char* no : {"false", "FALSE", "0", "no", "off"})
    EXPECT_FALSE(Config::load("", {std::string("train.recompute=") + no}, schema())
                     .get_bool("train.recompute"));
}

TEST(Config, UnknownKeyListsTheValidKeysOfItsSection) {
  TempDir dir;
  const std::string path = write_file(dir, "c.ini", "[train]\nsed = 3\n");
  expect_contains(error_of([&] { Config::load(path, {}, schema()); }),
                  {"unknown config key 'train.sed'", path,
                   "valid keys of [train]: seq_len, "
                   "recompute, name"});
  expect_contains(error_of([&] { Config::load("", {"model.layers=3"}, schema()); }),
                  {"'model.layers'", "command-line override",
                   "valid keys of [model]: d_model, rope_base, dilation, initial"});
}

TEST(Config, UnknownSectionListsTheValidSections) {
  expect_contains(error_of([&] { Config::load("", {"trian.seq_len=3"}, schema()); }),
                  {"unknown config section [trian]", "'trian.seq_len'", "command-line override",
                   "valid sections: model, train"});
}

TEST(Config, WrongTypeNamesKeyValueAndKind) {
  expect_contains(error_of([&] { Config::load("", {"train.seq_len=12x"}, schema()); }),
                  {"'train.seq_len'", "'12x'", "command-line override", "expected an integer"});
  expect_contains(error_of([&] { Config::load("", {"model.rope_base=fast"}, schema()); }),
                  {"'model.rope_base'", "'fast'", "a real number"});
  expect_contains(error_of([&] { Config::load("", {"model.rope_base=inf"}, schema()); }),
                  {"'model.rope_base'", "'inf'"});
  expect_contains(error_of([&] { Config::load("", {"train.recompute=maybe"}, schema()); }),
                  {"'train.recompute'", "'maybe'", "a boolean"});
  TempDir dir;
  const std::string path = write_file(dir, "c.ini", "[model]\nd_model = 1.5\n");
  expect_contains(error_of([&] { Config::load(path, {}, schema()); }),
                  {"'model.d_model'", "'1.5'", path, "expected an integer"});
}

TEST(Config, IntLists) {
  const auto list = [](const std::string& text) {
    return Config::load("", {"model.dilation=" + text}, schema()).get_int_list("model.dilation");
  };
  EXPECT_EQ(list("16"), (std::vector<std::int64_t>{16}));
  EXPECT_EQ(list(" -1 ,64, 1 "), (std::vector<std::int64_t>{-1, 64, 1}));
  EXPECT_TRUE(list("").empty());
  for (const char* bad : {"1,,2", "1,", ",1", "1;2", "1 2", "a"})
    expect_contains(error_of([&] { list(bad); }),
                    {"'model.dilation'", "a comma-separated list of integers"});
}

TEST(Config, MalformedOverrideIsNamed) {
  for (const char* bad : {"train.seq_len", "seq_len=5", ".seq_len=5", "train.=5", "=5"})
    expect_contains(error_of([&] { Config::load("", {bad}, schema()); }),
                    {std::string("malformed override '") + bad + "'", "section.key=value"});
}

TEST(Config, FileErrors) {
  TempDir dir;
  const std::string missing = dir.file("missing.ini");
  expect_contains(error_of([&] { Config::load(missing, {}, schema()); }),
                  {"config file '" + missing + "' not found"});
  const std::string bad = write_file(dir, "bad.ini", "[model]\nd_model = 3\n[train\n");
  expect_contains(error_of([&] { Config::load(bad, {}, schema()); }),
                  {"config file '" + bad + "' line 3", "unmatched '['"});
  const std::string no_eq = write_file(dir, "no_eq.ini", "[model]\nd_model 3\n");
  expect_contains(error_of([&] { Config::load(no_eq, {}, schema()); }), {no_eq, "line 2"});
  const std::string loose = write_file(dir, "loose.ini", "seq_len = 3\n[train]\n");
  expect_contains(error_of([&] { Config::load(loose, {}, schema()); }),
                  {loose, "'seq_len' is outside any [section]"});
}

TEST(Config, ToIniRoundTrips) {
  TempDir dir;
  const Config c = Config::load(
      "", {"model.dilation=64,16", "model.rope_base=0.1", "train.name=a b", "model.initial=2"},
      schema());
  const std::string ini = c.to_ini();
  expect_contains(
      ini, {"[model]\n# model width d\nd_model = 128\n", "dilation = 64,16\n", "rope_base = 0.1\n",
            "initial = 2\n", "[train]\n", "recompute = false\n", "name = a b\n"});
  // The interleaved schema key is written inside its section: one [model] only.
  EXPECT_EQ(ini.find("\n[model]\n"), ini.rfind("\n[model]\n"));
  const Config back = Config::load(write_file(dir, "resolved.ini", ini), {}, schema());
  EXPECT_EQ(back.to_ini(), ini);
  EXPECT_EQ(back.get_real("model.rope_base"), 0.1);
  EXPECT_EQ(back.get_int_list("model.dilation"), (std::vector<std::int64_t>{64, 16}));
}

TEST(Config, ToJson) {
  const Config c = Config::load("", {"train.name=say \"hi\"\\", "model.dilation=1,2"}, schema());
  EXPECT_EQ(c.to_json(),
            "{\n"
            "  \"model\": {\n"
            "    \"d_model\": 128,\n"
            "    \"rope_base\": 10000,\n"
            "    \"dilation\": [1, 2],\n"
            "    \"initial\": []\n"
            "  },\n"
            "  \"train\": {\n"
            "    \"seq_len\": 256,\n"
            "    \"recompute\": false,\n"
            "    \"name\": \"say \\\"hi\\\"\\\\\"\n"
            "  }\n"
            "}\n");
}

TEST(Config, MisuseOfTheSchemaIsAnInternalError) {
  const Config c = Config::load("", {}, schema());
  expect_contains(error_of([&] { c.get_int("model.nope"); }),
                  {"internal error", "'model.nope' is not in the schema"});
  expect_contains(error_of([&] { c.get_string("model.d_model"); }),
                  {"internal error", "'model.d_model' is an integer but was read as a string"});
  expect_contains(error_of([&] {
                    Config::load("", {}, {{"nodot", ValueKind::integer, "1", ""}});
                  }),
                  {"internal error", "'nodot'"});
}

}  // namespace
}  // namespace ratrain
