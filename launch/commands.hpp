// Entry points of the `ratrain` sub-commands. Each returns the process exit status;
// errors are thrown as ratrain::Error and reported by main().
#pragma once

#include <string>
#include <vector>

namespace ratrain {

int train_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int tokenize_command(const std::vector<std::string>& args);
int verify_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int export_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);

}  // namespace ratrain
