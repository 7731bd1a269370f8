// `ratrain`: trains, evaluates and verifies RAT+ language models.
//   ratrain train    [config.ini] [section.key=value ...]
//   ratrain eval     [config.ini] model.weights=MODEL.h5 [section.key=value ...]
//   ratrain tokenize --input TEXT --output DIR [--tokenizer byte|sentencepiece] ...
//   ratrain verify   REF.h5 [--dtype f64|f32]
//   ratrain export   MODEL.h5|CHECKPOINT|RUN --output OUT.pt [--head-name NAME]
//   ratrain inspect  CHECKPOINT|RUN|MODEL.h5 [--verify]
// Library code throws ratrain::Error; this is the one place that turns it into a
// message on stderr and a non-zero exit status.
//
// `train` starts MPI (under mpirun or srun, or as a singleton of one rank). An error on
// one rank of several aborts the whole job after printing it: the other ranks may be
// waiting for this one in a collective and would otherwise never return.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "launch/commands.hpp"
#include "parallel/mpi_runtime.hpp"
#include "runtime/error.hpp"

namespace {

constexpr const char* kUsage =
    "usage: ratrain <command> [arguments]\n"
    "commands:\n"
    "  train     [config.ini] [section.key=value ...]   train a RAT+ model (--help-config lists keys)\n"
    "  eval      [config.ini] model.weights=FILE ...    validation loss in dense and sparse mode\n"
    "  tokenize  --input TEXT --output DIR ...          text (one document per line) -> token files\n"
    "  verify    REF.h5 [--device cpu|cuda] [--dtype D] compare with a golden fixture file\n"
    "  bench     [config.ini] [section.key=value ...]   time training iterations on synthetic tokens\n"
    "  export    SRC --output OUT.pt [--head-name N]    state dict for PyTorch (the authors' names)\n"
    "  inspect   SRC [--verify]                         what a checkpoint, run folder or model file holds\n";

int dispatch(const std::string& command, const std::vector<std::string>& args) {
  if (command == "train") return ratrain::train_command(args);
  if (command == "eval") return ratrain::eval_command(args);
  if (command == "tokenize") return ratrain::tokenize_command(args);
  if (command == "verify") return ratrain::verify_command(args);
  if (command == "bench") return ratrain::bench_command(args);
  if (command == "export") return ratrain::export_command(args);
  if (command == "inspect") return ratrain::inspect_command(args);
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "ratrain: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  std::optional<ratrain::MpiRuntime> mpi;
  try {
    // The commands that may run as one rank of a parallel job.
    if (command == "train" || command == "bench") mpi.emplace(&argc, &argv);
    return dispatch(command, std::vector<std::string>(argv + 2, argv + argc));
  } catch (const ratrain::Error& e) {
    std::fprintf(stderr, "ratrain: %s\n", e.what());  // e.what() starts with its kind
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ratrain: unexpected error: %s\n", e.what());
  }
  if (mpi) mpi->abort_job(1);
  return 1;
}
