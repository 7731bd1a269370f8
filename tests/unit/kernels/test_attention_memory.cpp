// Attention must stay linear in memory at long context: forward + backward at
// T = 4096 (B = 1, H = 2, dh = 32, f32), dense and dilated (D = 16), may not grow the
// process's peak RSS by 8 MiB (a single T x T f32 score matrix is 64 MiB), and may not
// allocate any Tensor storage.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "runtime/allocator.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kMiB = 1 << 20;

// Peak resident set of the process so far (ru_maxrss is in KiB on Linux).
std::int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::int64_t(usage.ru_maxrss) * 1024;
}

// Resident set now, from /proc/self/statm (second field, in pages).
std::int64_t current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return std::int64_t(resident) * sysconf(_SC_PAGESIZE);
}

struct Buffers {
  Tensor q, k, v, out, lse, dout, dq, dk, dv;
  Buffers(std::int64_t seq, std::int64_t heads, std::int64_t dh) {
    const Shape shape{1, seq, heads, dh};
    q = test::random_tensor(shape, "q", 1.0, DType::f32);
    k = test::random_tensor(shape, "k", 1.0, DType::f32);
    v = test::random_tensor(shape, "v", 1.0, DType::f32);
    dout = test::random_tensor(shape, "dout", 1.0, DType::f32);
    out = Tensor::empty(shape, DType::f32);
    dq = Tensor::empty(shape, DType::f32);
    dk = Tensor::empty(shape, DType::f32);
    dv = Tensor::empty(shape, DType::f32);
    lse = Tensor::empty({1, heads, seq}, DType::f32);
  }
  void run(const Sparsity& rule) {
    ops::attention_forward(q, k, v, rule, out, lse);
    ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv);
  }
};

TEST(AttentionMemory, LinearInSequenceLength) {
  // Start the OpenMP thread pool (its stacks count as RSS) before measuring.
  Buffers(64, 2, 32).run(Sparsity::dense());

  Buffers buffers(4096, 2, 32);
  for (const Sparsity rule : {Sparsity::dense(), Sparsity{16, 0, 0}}) {
    reset_peak_memory(Device::cpu);
    const MemoryStats before = memory_stats(Device::cpu);
    // The baseline is the RSS now, which is at most the peak so far: stricter than
    // comparing two peaks.
    const std::int64_t rss_before = current_rss_bytes();
    buffers.run(rule);
    const std::int64_t growth = peak_rss_bytes() - rss_before;
    EXPECT_LT(growth, 8 * kMiB) << "D=" << rule.dilation << ": peak RSS grew by "
                                << growth / double(kMiB) << " MiB";
    EXPECT_EQ(memory_stats(Device::cpu).peak_bytes, before.bytes_in_use)
        << "D=" << rule.dilation << ": the kernels allocated Tensor storage";
  }
}

}  // namespace
}  // namespace ratrain
