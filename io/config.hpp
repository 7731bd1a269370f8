// A validated INI configuration (DESIGN.md "Launch").
//
// A schema lists every key once: its name "section.key", its kind, its default (as
// text, parsed like a value from the file) and a help line. Config::load resolves
// each key as   default  <  INI file  <  command-line overrides ("section.key=value",
// later overrides win), and parses every value when it is loaded, so:
// - an unknown key or section, a value of the wrong kind, a missing or malformed INI
//   file and a malformed override are ratrain::Errors at load time that name the key,
//   the value and where it came from (file path or "command-line override"), and list
//   what is valid;
// - the getters never fail on user input. Asking for a key that is not in the schema,
//   or with the getter of another kind, is a bug in the caller (an internal error).
//
// Example:  [train]                 overrides {"train.seq_len=512"}
//           seq_len = 256     ->    get_int("train.seq_len") == 512
//           dilation = 64,16        get_int_list("model.dilation") == {64, 16}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ratrain {

// integer: int64; real: finite double; boolean: true/false, yes/no, on/off, 1/0
// (any case); string: the text, trimmed; int_list: comma-separated integers.
enum class ValueKind { integer, real, boolean, string, int_list };

// "an integer", "a real number", ... for error messages.
std::string_view value_kind_name(ValueKind kind);

struct ConfigKey {
  std::string name;  // "section.key"
  ValueKind kind;
  std::string default_value;  // text, e.g. "64,16"
  std::string help;           // one line, written as a comment by to_ini()
};

class Config {
 public:
  Config() = default;  // no keys

  // `ini_path` may be empty (defaults + overrides only).
  static Config load(const std::string& ini_path, const std::vector<std::string>& overrides,
                     const std::vector<ConfigKey>& schema);

  std::int64_t get_int(const std::string& key) const;
  double get_real(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  const std::vector<std::int64_t>& get_int_list(const std::string& key) const;

  // Every key with its resolved value, by section in schema order, each preceded by
  // its help as a comment. Loading the result gives the same configuration.
  std::string to_ini() const;
  // {"section": {"key": value, ...}, ...} with JSON numbers, booleans, strings, arrays.
  std::string to_json() const;

 private:
  // Alternatives in ValueKind order (static_assert in config.cpp).
  using Value = std::variant<std::int64_t, double, bool, std::string, std::vector<std::int64_t>>;
  struct Entry {
    ConfigKey key;
    Value value;
  };

  // Parses `text` for `key` and stores it; `source` names where it came from.
  void set(const std::string& key, const std::string& text, const std::string& source);
  const Value& value(const std::string& key, ValueKind kind) const;
  // Section names in order of first appearance in the schema, and a section's entries:
  // the writers group by section even if the schema interleaves them.
  std::vector<std::string> sections() const;
  std::vector<const Entry*> section_entries(const std::string& section) const;

  std::vector<Entry> entries_;  // schema order
};

}  // namespace ratrain
