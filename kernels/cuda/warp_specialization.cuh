// Synchronisation for warp-specialised Hopper kernels (sm_90a): a producer warpgroup
// fills a ring of shared-memory stages while consumer warpgroups compute, so the
// consumers never wait at a CTA-wide barrier.
//
//   mbarrier   a 64-bit shared-memory barrier with an arrival count and a phase bit;
//              a stage's "full" barrier completes when the producer has arrived and
//              its loads' bytes have landed (tma.cuh), its "empty" barrier when every
//              consumer thread is done reading it. Waiters poll the parity of the phase they expect:
//              use u of a stage (u = 0, 1, ...) completes phase u, parity u % 2.
//   named      bar.sync / bar.arrive on barriers 1..15 over a subset of the CTA's
//   barrier    warps (0 is __syncthreads'): used to take turns between warpgroups.
//   setmaxnreg moves registers from the producer warpgroup (few live values) to the
//              consumers (accumulators), all warps of a warpgroup together.
#pragma once

#include <cstdint>

#include "kernels/cuda/attention_mma.cuh"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "setmaxnreg needs the sm_90a target (CMAKE_CUDA_ARCHITECTURES=90a)"
#endif

namespace ratrain::cuda::ws {

// One thread initialises; a __syncthreads must follow before any other thread uses it.
__device__ __forceinline__ void mbarrier_init(std::uint64_t* bar, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(mma::shared_address(bar)),
               "r"(arrivals)
               : "memory");
}
// Arrives (release: this thread's earlier shared-memory writes are visible to whoever
// sees the phase complete).
__device__ __forceinline__ void mbarrier_arrive(std::uint64_t* bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(
                   mma::shared_address(bar))
               : "memory");
}
// Blocks until the phase of parity `parity` has completed (acquire).
__device__ __forceinline__ void mbarrier_wait(std::uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(mma::shared_address(bar)),
      "r"(parity)
      : "memory");
}

// Named barrier `id` over `threads` threads (a multiple of 32): sync blocks until
// `threads` arrivals (its own included); arrive counts without waiting.
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Per-thread register budget of the calling warpgroup (a multiple of 8, 24..256).
template <int kRegisters>
__device__ __forceinline__ void grow_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void shrink_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

}  // namespace ratrain::cuda::ws
