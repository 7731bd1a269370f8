// Hang watchdog of `ratrain train` (issue #5 item 5): a rank that dies ends the job
// through the launcher (mpirun, srun --kill-on-bad-exit), but a rank that hangs (stopped,
// stuck in a driver, a peer that never joins a collective) would block every other rank
// forever: NCCL has no communicator timeout here and MPI collectives none at all.
//
// `ratrain train` arms the watchdog for each start-up phase (communicators, model and
// optimizer set-up, checkpoint resume, the initial validation pass: a peer that never
// joins NCCL's set-up hangs there), at the start of each iteration and for each phase
// after the loop, and disarms it after each iteration. A background thread sleeps until the armed
// phase's deadline; when the phase is still running then, it writes one line to stderr
// and ends the process with kExitHang. The launcher sees a task end non-zero and ends
// every other rank, so the job fails within train.hang_timeout_s plus the launcher's
// kill time instead of hanging.
//
// Why the process ends itself with std::_Exit and not with MPI_Abort: MPI is initialised
// with MPI_THREAD_FUNNELED (parallel/mpi_runtime.hpp), so only the main thread may call
// MPI, and the main thread is the one that hangs. _Exit runs no destructors and no atexit
// handlers, which might wait for that same main thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace ratrain {

// The exit status of a process whose watchdog fired: EX_SOFTWARE of sysexits.h. Not
// kExitRequeue (75, EX_TEMPFAIL): launch/slurm/run_training.sh requeues a job on 75, and
// a job that hung may hang again at the same step, requeued forever; a person decides.
// Not 1 either, so that a hang can be told from an error (main.cpp's exit status), nor
// 124, timeout(1)'s.
inline constexpr int kExitHang = 70;

class StepWatchdog {
 public:
  // timeout_s: the longest an armed phase may run; 0 disables the watchdog (no thread,
  // arm and disarm do nothing). world_rank: named in the message.
  StepWatchdog(std::int64_t timeout_s, int world_rank);
  StepWatchdog(const StepWatchdog&) = delete;
  StepWatchdog& operator=(const StepWatchdog&) = delete;
  // Stops and joins the thread (returns at once, whatever is armed).
  ~StepWatchdog();

  // Starts the clock of a phase, replacing the one armed before. `what` (a string
  // literal: the pointer is kept) names a phase after `iteration` ("final validation"
  // reads "final validation after iteration 20"; with iteration 0, a start-up phase:
  // "checkpoint resume before the first iteration"); null names the iteration itself
  // ("iteration 8", numbered as the progress lines are: from 1).
  void arm(std::int64_t iteration, const char* what = nullptr);
  // Ends the armed phase (nothing armed: no effect).
  void disarm();

 private:
  using Clock = std::chrono::steady_clock;
  void watch();
  [[noreturn]] void fire(Clock::time_point now) const;

  const std::chrono::seconds timeout_;
  const int rank_;
  const std::string host_;
  std::mutex mutex_;
  std::condition_variable armed_changed_;
  // Guarded by mutex_.
  bool stopping_ = false;
  bool armed_ = false;
  std::int64_t iteration_ = 0;
  const char* what_ = nullptr;
  Clock::time_point armed_at_;
  // Last: started once the members it reads are constructed.
  std::thread thread_;
};

}  // namespace ratrain
