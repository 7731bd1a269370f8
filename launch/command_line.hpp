// The `ratrain` command line: `ratrain <command> [positional...] [--flag value...]
// [section.key=value...]`. Each command declares the flags it accepts; an unknown
// flag is an error listing the valid ones.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ratrain {

struct FlagSpec {
  std::string name;  // without the leading "--"
  bool takes_value = true;
  std::string help;
};

struct CommandLine {
  std::string command;
  std::vector<std::string> positional;  // e.g. the config file or the fixture
  std::vector<std::string> overrides;   // "section.key=value"
  std::map<std::string, std::string> flags;

  // args: everything after the command name.
  static CommandLine parse(const std::string& command, const std::vector<std::string>& args,
                           const std::vector<FlagSpec>& accepted);
  std::optional<std::string> flag(const std::string& name) const;
  std::string flag_or(const std::string& name, const std::string& fallback) const;
  double real_flag_or(const std::string& name, double fallback) const;
  bool has(const std::string& name) const { return flags.count(name) != 0; }
};

}  // namespace ratrain
