// Config: loading (defaults < INI file < overrides), value parsing and the INI/JSON
// writers. See config.hpp for the rules.
#include "io/config.hpp"

#include <algorithm>
#include <array>
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

constexpr std::array<std::string_view, 5> kKindNames = {
    "an integer", "a real number", "a boolean (true/false, yes/no, on/off, 1/0)", "a string",
    "a comma-separated list of integers"};
static_assert(kKindNames.size() == static_cast<std::size_t>(ValueKind::int_list) + 1,
              "one name per ValueKind");

// A misuse of the schema or the getters: a bug in the calling code, not a user error.
[[noreturn]] void schema_bug(const std::string& message) {
  report_failure("internal error", "", __FILE__, __LINE__, message);
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// "train" of "train.seq_len".
std::string section_of(const std::string& name) { return name.substr(0, name.find('.')); }
// "seq_len" of "train.seq_len".
std::string key_of(const std::string& name) { return name.substr(name.find('.') + 1); }

bool is_section_key(const std::string& name) {
  const auto dot = name.find('.');
  return dot != std::string::npos && dot > 0 && dot + 1 < name.size();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out.append(out.empty() ? "" : ", ").append(item);
  return out;
}

std::string join_ints(const std::vector<std::int64_t>& values, const char* separator) {
  std::string out;
  for (const auto v : values) out.append(out.empty() ? "" : separator).append(std::to_string(v));
  return out;
}

// Parses all of `text` as T with std::from_chars.
template <typename T>
std::optional<T> parse_number(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return false;
  return std::nullopt;
}

std::optional<std::vector<std::int64_t>> parse_int_list(const std::string& text) {
  std::vector<std::int64_t> values;
  if (text.empty()) return values;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto value = parse_number<std::int64_t>(trim(item));
    if (!value) return std::nullopt;
    values.push_back(*value);
  }
  if (text.back() == ',') return std::nullopt;  // getline drops a trailing empty item
  return values;
}

// INI spelling of each value type; loading it back gives the same value (reals are
// written in their shortest round-trip form).
std::string ini_text(std::int64_t value) { return std::to_string(value); }
std::string ini_text(bool value) { return value ? "true" : "false"; }
std::string ini_text(const std::string& value) { return value; }
std::string ini_text(const std::vector<std::int64_t>& values) { return join_ints(values, ","); }
std::string ini_text(double value) {
  std::array<char, 32> buf;
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  return std::string(buf.data(), end);
}

// JSON spelling: numbers and booleans as in INI (reals are finite), strings quoted and
// escaped, lists as arrays.
template <typename T>
std::string json_text(const T& value) {
  return ini_text(value);
}
std::string json_text(const std::vector<std::int64_t>& values) {
  return std::string("[").append(join_ints(values, ", ")).append("]");
}
std::string json_text(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          std::array<char, 8> buf;
          std::snprintf(buf.data(), buf.size(), "\\u%04x", c);
          out += buf.data();
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string_view value_kind_name(ValueKind kind) {
  return kKindNames[static_cast<std::size_t>(kind)];
}

Config Config::load(const std::string& ini_path, const std::vector<std::string>& overrides,
                    const std::vector<ConfigKey>& schema) {
  static_assert(std::variant_size_v<Value> == kKindNames.size(),
                "Config::Value has one alternative per ValueKind, in ValueKind order");
  Config config;
  for (const ConfigKey& key : schema) {
    if (!is_section_key(key.name)) schema_bug("schema key '" + key.name + "' is not section.key");
    for (const Entry& e : config.entries_)
      if (e.key.name == key.name) schema_bug("schema key '" + key.name + "' is listed twice");
    config.entries_.push_back({key, {}});
    config.set(key.name, key.default_value, "schema default");
  }

  if (!ini_path.empty()) {
    RT_REQUIRE(std::filesystem::is_regular_file(ini_path), "config file '", ini_path,
               "' not found");
    boost::property_tree::ptree tree;
    try {
      boost::property_tree::ini_parser::read_ini(ini_path, tree);
    } catch (const boost::property_tree::ini_parser_error& e) {
      RT_FAIL("config file '", ini_path, "' line ", e.line(), ": ", e.message());
    }
    const std::string source = "file '" + ini_path + "'";
    for (const auto& [section, keys] : tree) {
      // A section never carries a value of its own; a key above the first [section] does.
      RT_REQUIRE(keys.data().empty(), "config file '", ini_path, "': key '", section,
                 "' is outside any [section]");
      for (const auto& [key, value] : keys) config.set(section + "." + key, value.data(), source);
    }
  }

  for (const std::string& item : overrides) {
    const auto eq = item.find('=');
    const std::string name = trim(std::string_view(item).substr(0, eq));
    RT_REQUIRE(eq != std::string::npos && is_section_key(name), "malformed override '", item,
               "': expected section.key=value, e.g. train.seq_len=512");
    config.set(name, item.substr(eq + 1), "command-line override");
  }
  return config;
}

void Config::set(const std::string& key, const std::string& text, const std::string& source) {
  const auto entry = std::find_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return e.key.name == key; });
  if (entry == entries_.end()) {
    const std::string section = section_of(key);
    std::vector<std::string> section_keys;
    for (const Entry* e : section_entries(section)) section_keys.push_back(key_of(e->key.name));
    RT_REQUIRE(section_keys.empty(), "unknown config key '", key, "' (", source,
               "); valid keys of [", section, "]: ", join(section_keys));
    RT_FAIL("unknown config section [", section, "] in key '", key, "' (", source,
            "); valid sections: ", join(sections()));
  }

  const std::string value_text = trim(text);
  const ValueKind kind = entry->key.kind;
  std::optional<Value> value;
  switch (kind) {
    case ValueKind::integer: value = parse_number<std::int64_t>(value_text); break;
    case ValueKind::real:
      if (const auto real = parse_number<double>(value_text); real && std::isfinite(*real))
        value = *real;
      break;
    case ValueKind::boolean: value = parse_bool(value_text); break;
    case ValueKind::string: value = value_text; break;
    case ValueKind::int_list: value = parse_int_list(value_text); break;
  }
  RT_REQUIRE(value.has_value(), "config key '", key, "' = '", value_text, "' (", source,
             ") is not valid: expected ", value_kind_name(kind));
  entry->value = std::move(*value);
}

const Config::Value& Config::value(const std::string& key, ValueKind kind) const {
  for (const Entry& e : entries_) {
    if (e.key.name != key) continue;
    if (e.key.kind != kind)
      schema_bug(detail::concat("config key '", key, "' is ", value_kind_name(e.key.kind),
                                " but was read as ", value_kind_name(kind)));
    return e.value;
  }
  schema_bug("config key '" + key + "' is not in the schema");
}

std::vector<std::string> Config::sections() const {
  std::vector<std::string> names;
  for (const Entry& e : entries_) {
    const std::string section = section_of(e.key.name);
    if (std::find(names.begin(), names.end(), section) == names.end()) names.push_back(section);
  }
  return names;
}

std::vector<const Config::Entry*> Config::section_entries(const std::string& section) const {
  std::vector<const Entry*> found;
  for (const Entry& e : entries_)
    if (section_of(e.key.name) == section) found.push_back(&e);
  return found;
}

std::int64_t Config::get_int(const std::string& key) const {
  return std::get<std::int64_t>(value(key, ValueKind::integer));
}

double Config::get_real(const std::string& key) const {
  return std::get<double>(value(key, ValueKind::real));
}

bool Config::get_bool(const std::string& key) const {
  return std::get<bool>(value(key, ValueKind::boolean));
}

const std::string& Config::get_string(const std::string& key) const {
  return std::get<std::string>(value(key, ValueKind::string));
}

const std::vector<std::int64_t>& Config::get_int_list(const std::string& key) const {
  return std::get<std::vector<std::int64_t>>(value(key, ValueKind::int_list));
}

std::string Config::to_ini() const {
  std::string out = "# ratrain configuration, every key resolved (defaults, file, overrides)\n";
  for (const std::string& section : sections()) {
    out += "\n[" + section + "]\n";
    for (const Entry* e : section_entries(section)) {
      if (!e->key.help.empty()) out += "# " + e->key.help + "\n";
      out += key_of(e->key.name) + " = " +
             std::visit([](const auto& v) { return ini_text(v); }, e->value) + "\n";
    }
  }
  return out;
}

std::string Config::to_json() const {
  std::string out = "{";
  const char* section_sep = "\n";
  for (const std::string& section : sections()) {
    out += section_sep + ("  " + json_text(section)) + ": {";
    const char* key_sep = "\n";
    for (const Entry* e : section_entries(section)) {
      out += key_sep + ("    " + json_text(key_of(e->key.name))) + ": " +
             std::visit([](const auto& v) { return json_text(v); }, e->value);
      key_sep = ",\n";
    }
    out += "\n  }";
    section_sep = ",\n";
  }
  return out + "\n}\n";
}

}  // namespace ratrain
