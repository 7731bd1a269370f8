// Preemption and time limits (DESIGN.md "Launch"; issue #5): Slurm warns a job before it
// ends it (sbatch --signal=B:USR1@<lead>, forwarded to the tasks by launch/slurm's
// template; SIGTERM on preemption or scancel). A training run takes either signal as a
// request to stop at the next step boundary, with a checkpoint, and to end with
// kExitRequeue, which the template turns into `scontrol requeue`: the job comes back
// later and resumes from `latest`.
//
// The handler only sets a flag (async-signal-safe). The ranks agree at each step
// boundary, by one all-reduce of the flags over the world, so that a signal delivered to
// one rank only stops every rank at the same iteration, and none waits for another in a
// collective it will never join.
#pragma once

#include "parallel/group.hpp"

namespace ratrain {

// The exit status of a run that stopped on a signal after committing its checkpoint:
// EX_TEMPFAIL of sysexits.h, "try again later".
inline constexpr int kExitRequeue = 75;

// Installs the SIGUSR1 and SIGTERM handlers for its lifetime (the previous ones are
// restored after). One at a time per process.
class StopSignals {
 public:
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals();

  // Collective over `world`: the signal number (SIGUSR1 or SIGTERM) when any rank has
  // received one since construction, else 0; the same on every rank.
  int agreed(const Group& world) const;
};

}  // namespace ratrain
