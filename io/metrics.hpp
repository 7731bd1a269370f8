// Metrics as JSON lines (DESIGN.md principle 6): one object per line, appended and
// flushed as it is produced so that a crashed or preempted run keeps every line it
// logged. Keys keep their insertion order so lines read well in a terminal.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace ratrain {

// Builds one flat JSON object.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, std::int64_t value);
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  std::string str() const { return body_.empty() ? "{}" : "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

class MetricsWriter {
 public:
  // Opens `path` for appending; an unwritable path is an error naming it.
  explicit MetricsWriter(const std::string& path);
  void write(const JsonLine& line);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace ratrain
