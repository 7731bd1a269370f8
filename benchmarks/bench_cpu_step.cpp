// CPU forward+backward throughput of the demo model (configs/tiny.ini: 4 layers,
// d = 128, 4 heads, byte vocabulary 259, T = 256, batch 8) in dense and sparse (D = 16)
// mode, as tokens/s and model GFLOP/s (model/flops.hpp). Random token ids: the cost
// does not depend on the data.
//   build/cpu/benchmarks/bench_cpu_step [--benchmark_min_time=5s]
#include <benchmark/benchmark.h>

#include "model/flops.hpp"
#include "model/rat_lm.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {

ModelConfig demo_config() {
  ModelConfig c;
  c.vocab_size = 259;
  c.d_model = 128;
  c.num_heads = 4;
  c.num_layers = 4;
  c.sparse_rules = make_layer_rules(4, {16}, {0}, {0});
  return c;
}

void BM_ForwardBackward(benchmark::State& state) {
  const auto mode = state.range(0) ? AttentionMode::sparse : AttentionMode::dense;
  const std::int64_t batch = 8, seq = 256;
  RatLM model(demo_config(), DType::f32);
  model.params().initialize(1, 0.02);
  Tensor ids = Tensor::empty({batch, seq}, DType::i32), labels = Tensor::empty({batch, seq}, DType::i32);
  const CounterRng rng(3, "bench.tokens");
  for (std::int64_t i = 0; i < batch * seq; ++i) {
    ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i, 259));
    labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i + 1, 259));
  }
  for (auto _ : state) {
    model.params().zero_grads();
    benchmark::DoNotOptimize(model.forward_backward(ids, labels, mode, 1.0 / (batch * seq)));
  }
  const double tokens = static_cast<double>(batch * seq);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(
      tokens * training_flops_per_token(demo_config(), seq, mode) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(mode == AttentionMode::dense ? "dense" : "sparse D=16");
}
BENCHMARK(BM_ForwardBackward)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ratrain

BENCHMARK_MAIN();
