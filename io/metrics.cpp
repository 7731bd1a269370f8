#include "io/metrics.hpp"

#include <cmath>
#include <cstdio>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

std::string escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

void JsonLine::key(const std::string& k) {
  if (!body_.empty()) body_ += ", ";
  body_.append("\"").append(escaped(k)).append("\": ");
}

JsonLine& JsonLine::add(const std::string& k, double value) {
  key(k);
  if (!std::isfinite(value)) {
    body_ += "null";  // JSON has no NaN/Inf; null keeps the line parseable
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", value);
    body_ += buf;
  }
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, std::int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::add(const std::string& k, const std::string& value) {
  key(k);
  body_.append("\"").append(escaped(value)).append("\"");
  return *this;
}

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::app) {
  RT_REQUIRE(out_.good(), "cannot open metrics file '", path, "' for writing");
}

void MetricsWriter::write(const JsonLine& line) {
  out_ << line.str() << '\n';
  out_.flush();
  RT_REQUIRE(out_.good(), "writing metrics file '", path_, "' failed (disk full?)");
}

}  // namespace ratrain
