// GPU time by kernel name (see kernel_times.hpp).
#include "runtime/kernel_times.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace ratrain {

void KernelTimes::add(std::string_view name, std::uint64_t ns, std::int64_t calls) {
  auto [it, inserted] = by_name_.try_emplace(std::string(name));
  if (inserted) it->second.name = it->first;
  it->second.calls += calls;
  it->second.total_ns += ns;
}

void KernelTimes::merge(const KernelTimes& other) {
  for (const auto& [name, time] : other.by_name_) add(name, time.total_ns, time.calls);
}

std::vector<KernelTime> KernelTimes::heaviest_first() const {
  std::vector<KernelTime> out;
  out.reserve(by_name_.size());
  for (const auto& entry : by_name_) out.push_back(entry.second);
  std::sort(out.begin(), out.end(), [](const KernelTime& a, const KernelTime& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.name < b.name;
  });
  return out;
}

namespace {

// Erases every occurrence of `what` in `text`.
void erase_all(std::string& text, std::string_view what) {
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at))
    text.erase(at, what.size());
}

}  // namespace

std::string display_kernel_name(const char* symbol) {
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(symbol, nullptr, nullptr, &status), &std::free);
  if (status != 0 || !demangled) return symbol;
  std::string name = demangled.get();
  erase_all(name, "(anonymous namespace)::");
  // Scan at template depth 0: the parameter list starts at the first '(' there, the last
  // "::" or ' ' before it ends the return type and the namespace qualifiers.
  std::size_t start = 0, end = name.size();
  int depth = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') ++depth;
    else if (c == '>') --depth;
    else if (depth == 0 && c == '(') { end = i; break; }
    else if (depth == 0 && c == ' ') start = i + 1;
    else if (depth == 0 && c == ':' && i + 1 < name.size() && name[i + 1] == ':') start = i + 2;
  }
  return name.substr(start, end - start);
}

}  // namespace ratrain
