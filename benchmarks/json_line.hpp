// One flat JSON object per line: the record format every GPU benchmark prints on stdout
// (benchmarks/README.md "Records"), read by benchmarks/report_table.py.
// Invariants: keys and string values are plain ASCII (quotes and backslashes escaped);
// numbers keep 9 significant digits; a non-finite number is written as null.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace ratrain::bench {

class JsonLine {
 public:
  JsonLine& add(std::string_view key, std::string_view value) {
    return raw(key, quoted(value));
  }
  // Without this overload a string literal would convert to bool before string_view.
  JsonLine& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  JsonLine& add(std::string_view key, std::int64_t value) { return raw(key, std::to_string(value)); }
  JsonLine& add(std::string_view key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  JsonLine& add(std::string_view key, double value) {
    if (!std::isfinite(value)) return raw(key, "null");
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", value);
    return raw(key, text);
  }

  std::string str() const { return "{" + body_ + "}"; }

 private:
  static std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += (c == '\n' || c == '\r') ? ' ' : c;
    }
    return out + "\"";
  }
  JsonLine& raw(std::string_view key, const std::string& value) {
    if (!body_.empty()) body_ += ", ";
    body_ += quoted(key) + ": " + value;
    return *this;
  }

  std::string body_;
};

}  // namespace ratrain::bench
