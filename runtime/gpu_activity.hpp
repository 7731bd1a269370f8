// Device-side timestamps of the work the GPU runs (kernels, copies, memsets), through
// NVIDIA's CUPTI activity API: `ratrain bench --gaps` turns them into the busy fraction
// and launch gaps of a training step (runtime/idle_gaps.hpp). Timestamps are the GPU's
// own, so host timing cannot hide a gap and a gap cannot be blamed on the host clock.
//
// CUPTI delivers the records in buffers it asks for and hands back (its callbacks run
// on a CUPTI thread); collect() flushes them. Recording slows the work it records by a
// little (one record per kernel); concurrent kernels stay concurrent (the
// CONCURRENT_KERNEL kind). One recorder per process at a time.
//
// A CUDA build without CUPTI (no cupti.h / libcupti) and a CPU build have no recorder:
// available() is false and the constructor fails saying why.
#pragma once

#include <vector>

#include "runtime/idle_gaps.hpp"
#include "runtime/kernel_times.hpp"

namespace ratrain {

class GpuActivity {
 public:
  // True in a build with CUPTI and with a visible GPU.
  static bool available();

  // Starts recording.
  GpuActivity();
  GpuActivity(const GpuActivity&) = delete;
  GpuActivity& operator=(const GpuActivity&) = delete;
  ~GpuActivity();  // stops

  struct Recording {
    std::vector<TimeInterval> work;  // one interval per kernel, copy and memset
    KernelTimes by_name;             // their time by kernel name ("memcpy DtoD", "memset")
    TimeInterval window;             // since construction or the previous collect()
    std::uint64_t dropped = 0;       // records CUPTI could not store (then gaps overstate)
  };
  // The work finished since construction or the previous collect() (synchronise the
  // device first), and that window.
  Recording collect();
};

}  // namespace ratrain
