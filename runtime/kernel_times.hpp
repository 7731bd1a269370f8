// GPU time summed by kernel name (and by copy / memset kind), heaviest first: what
// `ratrain bench --gaps` prints under the busy fraction, so that a step's time can be
// read per kernel without a profiler on the cluster. Pure bookkeeping, no device; the
// records come from runtime/gpu_activity.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ratrain {

struct KernelTime {
  std::string name;
  std::int64_t calls = 0;
  std::uint64_t total_ns = 0;
};

class KernelTimes {
 public:
  void add(std::string_view name, std::uint64_t ns, std::int64_t calls = 1);
  void merge(const KernelTimes& other);
  // Every name once, the largest total first (equal totals by name, so output is stable).
  std::vector<KernelTime> heaviest_first() const;
  bool empty() const { return by_name_.empty(); }

 private:
  std::unordered_map<std::string, KernelTime> by_name_;
};

// A kernel's name as people read it, from its (possibly) mangled symbol: demangled, the
// return type, "(anonymous namespace)::", namespace qualifiers and the parameter list
// dropped, template arguments kept (they tell the variants apart):
//   _ZN7ratrain4cuda12_GLOBAL__N_15scaleILi4EEEvPfi -> "scale<4>".
// Names that are not mangled C++ (cuBLAS's "sm90_xmma_gemm_..."), are returned as given.
std::string display_kernel_name(const char* symbol);

}  // namespace ratrain
