// `ratrain export SRC --output OUT.pt [--head-name NAME]`: the weights as a PyTorch state
// dict with the RAT+ authors' parameter names and a tied head (default key
// lm_head.weight, sharing the embedding's storage; --head-name '' leaves it out), and
// OUT.pt.json with the model config. SRC is a model file, a checkpoint folder (step_N),
// or a run folder: then its checkpoints/latest where there is one (a finished run's last
// checkpoint holds model.h5's values), else its model.h5.
//
// The writing is done by tools/torch_interchange.py (h5py + torch), run as a child
// process with python3 from the PATH or $RATRAIN_PYTHON; its exit status is ours (3: a
// module it needs is missing, named on stderr). The reverse direction, a state dict to a
// model file, is that script's `import` command.
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/checkpoint_folder.hpp"
#include "launch/command_line.hpp"
#include "launch/commands.hpp"
#include "runtime/log.hpp"

extern char** environ;

namespace ratrain {
namespace {

namespace fs = std::filesystem;

// The script in the source tree this binary was built from (launch/CMakeLists.txt).
constexpr const char* kInterchangeTool = RATRAIN_TOOLS_DIR "/torch_interchange.py";

// What the script reads: a model file or a checkpoint folder; a run folder resolves to
// one of them.
std::string resolve_source(const std::string& src) {
  RT_REQUIRE(fs::exists(src), "ratrain export: '", src, "' does not exist");
  if (!fs::is_directory(src) || fs::exists(fs::path(src) / "index.h5")) return src;
  const std::string checkpoints = (fs::path(src) / "checkpoints").string();
  if (const auto latest = latest_checkpoint(checkpoints)) {
    log_info("exporting run folder ", src, " from its latest checkpoint ", *latest);
    return *latest;
  }
  const std::string model = (fs::path(src) / "model.h5").string();
  RT_REQUIRE(fs::exists(model), "ratrain export: '", src, "' is a folder with neither "
             "index.h5 (a checkpoint folder), checkpoints/latest nor model.h5 (a run folder)");
  log_info("exporting run folder ", src, " from its model file ", model,
           " (no checkpoints/latest)");
  return model;
}

// Runs argv (argv[0] looked up in the PATH) and returns its exit status.
int run_child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  RT_REQUIRE(spawn_error == 0, "ratrain export: cannot run '", args[0], "' (",
             std::strerror(spawn_error), "): it needs Python 3 with numpy, h5py and torch; "
             "install them or set RATRAIN_PYTHON to such an interpreter");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    RT_REQUIRE(errno == EINTR, "ratrain export: waitpid failed: ", std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  RT_FAIL("ratrain export: '", args[0], " ", kInterchangeTool, "' was ended by signal ",
          WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

}  // namespace

int export_command(const std::vector<std::string>& args) {
  const CommandLine cl = CommandLine::parse(
      "export", args,
      {{"output", true, "the state dict file to write (.pt); OUT.pt.json gets the config"},
       {"head-name", true, "key of the tied head (default lm_head.weight; '' = none)"}});
  RT_REQUIRE(cl.positional.size() == 1 && cl.overrides.empty(),
             "usage: ratrain export SRC --output OUT.pt [--head-name NAME] (SRC: model.h5, "
             "a checkpoint folder or a run folder)");
  const auto output = cl.flag("output");
  RT_REQUIRE(output, "ratrain export needs --output OUT.pt");
  RT_REQUIRE(fs::exists(kInterchangeTool), "ratrain export: the Python tool '",
             kInterchangeTool, "' is missing (it is run from the source tree of the build)");
  const std::string source = resolve_source(cl.positional[0]);

  const char* python = std::getenv("RATRAIN_PYTHON");
  const std::string interpreter = python && *python ? python : "python3";
  const int status = run_child({interpreter, kInterchangeTool, "export", source, *output,
                                "--head-name", cl.flag_or("head-name", "lm_head.weight")});
  if (status != 0)
    std::fprintf(stderr, "ratrain: export failed: %s %s exited with status %d%s\n",
                 interpreter.c_str(), kInterchangeTool, status,
                 status == 3 ? " (a Python module is missing: see above; RATRAIN_PYTHON "
                               "selects the interpreter)" : "");
  return status;
}

}  // namespace ratrain
