#include "launch/command_line.hpp"

#include "runtime/error.hpp"

namespace ratrain {
namespace {

std::string valid_flags(const std::vector<FlagSpec>& accepted) {
  std::string out;
  for (const auto& f : accepted) out += (out.empty() ? "--" : ", --") + f.name;
  return out.empty() ? "(none)" : out;
}

}  // namespace

CommandLine CommandLine::parse(const std::string& command, const std::vector<std::string>& args,
                               const std::vector<FlagSpec>& accepted) {
  CommandLine cl;
  cl.command = command;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const FlagSpec* spec = nullptr;
      for (const auto& f : accepted)
        if (f.name == name) spec = &f;
      RT_REQUIRE(spec, "ratrain ", command, ": unknown option --", name, "; valid: ",
                 valid_flags(accepted));
      if (spec->takes_value && value.empty()) {
        RT_REQUIRE(i + 1 < args.size(), "ratrain ", command, ": option --", name,
                   " needs a value");
        value = args[++i];
      }
      cl.flags[name] = value;
    } else if (a.find('=') != std::string::npos) {
      cl.overrides.push_back(a);
    } else {
      cl.positional.push_back(a);
    }
  }
  return cl;
}

std::optional<std::string> CommandLine::flag(const std::string& name) const {
  const auto it = flags.find(name);
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

std::string CommandLine::flag_or(const std::string& name, const std::string& fallback) const {
  return flag(name).value_or(fallback);
}

double CommandLine::real_flag_or(const std::string& name, double fallback) const {
  const auto text = flag(name);
  if (!text) return fallback;
  try {
    std::size_t used = 0;
    const double value = std::stod(*text, &used);
    if (used == text->size()) return value;
  } catch (const std::exception&) {
  }
  RT_FAIL("ratrain ", command, ": option --", name, " expects a number, got '", *text, "'");
}

}  // namespace ratrain
