// Our side of GPU benchmarks a-c (benchmarks/README.md): ratrain's CUDA ops called through
// the op API (kernels/ops.hpp) on device tensors, timed as the PyTorch baselines are
// (cuda_timing.hpp) and printed as the same JSON records, one line each on stdout
// (progress and errors on stderr).
//   a. attention_forward + attention_backward, dense causal, bf16, lse f32
//   b. the same under dilated rules (D, W, P)
//   c. gated_scan_forward + gated_scan_backward (bf16 storage, f32 gate), and the device
//      copy bandwidth (cudaMemcpyAsync device to device of 1 GiB) that it is judged by.
// Attention shapes: H = 16, dh = 128, T in --seq, B = tokens / T (the same tokens per
// measurement as the baseline). Scan: B x T in --scan-shapes, C = 2048. A case that
// fails (e.g. a kernel not written yet) prints a record with "error" and the run goes on.
//   build/cuda/benchmarks/bench_cuda_kernels [--parts a,b,c] [--seq 4096,8192] [--iters 10]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/cuda_timing.hpp"
#include "benchmarks/json_line.hpp"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/ops.hpp"
#include "model/flops.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain::bench {
namespace {

struct Options {
  std::string parts = "a,b,c";
  std::vector<std::int64_t> seq = {4096, 8192, 16384, 32768};
  std::int64_t tokens = 32768;  // B x T of every attention measurement
  std::int64_t heads = 16;
  std::int64_t head_dim = 128;
  std::vector<std::int64_t> dilations = {16, 64};
  std::vector<std::int64_t> windows = {0, 256};
  std::int64_t initial = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> scan_shapes = {{1, 4096}, {8, 4096}, {1, 32768}};
  std::int64_t channels = 2048;
  TimingConfig timing;
  int scan_iters = 20;  // the scan takes tens of microseconds: more samples for the median

  bool runs(char part) const { return parts.find(part) != std::string::npos; }
};

std::vector<std::int64_t> parse_list(const std::string& text) {
  std::vector<std::int64_t> values;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) values.push_back(std::stoll(item));
  return values;
}

// "1x4096,8x4096" -> {(1, 4096), (8, 4096)}.
std::vector<std::pair<std::int64_t, std::int64_t>> parse_shapes(const std::string& text) {
  std::vector<std::pair<std::int64_t, std::int64_t>> shapes;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) {
    const auto x = item.find('x');
    RT_REQUIRE(x != std::string::npos, "--scan-shapes wants BxT items, got '", item, "'");
    shapes.emplace_back(std::stoll(item.substr(0, x)), std::stoll(item.substr(x + 1)));
  }
  return shapes;
}

Options parse_options(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::function<void(const std::string&)>> setters = {
      {"--parts", [&](const std::string& v) { o.parts = v; }},
      {"--seq", [&](const std::string& v) { o.seq = parse_list(v); }},
      {"--tokens", [&](const std::string& v) { o.tokens = std::stoll(v); }},
      {"--dilations", [&](const std::string& v) { o.dilations = parse_list(v); }},
      {"--windows", [&](const std::string& v) { o.windows = parse_list(v); }},
      {"--initial", [&](const std::string& v) { o.initial = std::stoll(v); }},
      {"--scan-shapes", [&](const std::string& v) { o.scan_shapes = parse_shapes(v); }},
      {"--channels", [&](const std::string& v) { o.channels = std::stoll(v); }},
      {"--warmup", [&](const std::string& v) { o.timing.warmup = std::stoi(v); }},
      {"--iters", [&](const std::string& v) { o.timing.iters = std::stoi(v); }},
      {"--scan-iters", [&](const std::string& v) { o.scan_iters = std::stoi(v); }},
  };
  for (int i = 1; i < argc; i += 2) {
    const auto it = setters.find(argv[i]);
    if (it == setters.end() || i + 1 >= argc) {
      std::string known;
      for (const auto& [name, setter] : setters) known += " " + name;
      RT_FAIL("unknown option or missing value: '", argv[i], "'; options (each with a value):", known);
    }
    it->second(argv[i + 1]);
  }
  return o;
}

std::string device_name() {
  cudaDeviceProp props{};
  RT_CHECK_CUDA(cudaGetDeviceProperties(&props, 0));
  return props.name;
}

void print(const JsonLine& line) {
  std::printf("%s\n", line.str().c_str());
  std::fflush(stdout);
}

// A (numel) device tensor of `dtype` holding uniform values of unit variance (on
// [-sqrt 3, sqrt 3)). Timing does not depend on the values, but realistic ones keep the
// softmax and the gate away from degenerate cases. splitmix64 rather than the Philox
// generator of runtime/rng: filling 64M elements must take a fraction of a second.
Tensor random_device_tensor(std::int64_t numel, DType dtype, std::uint64_t seed) {
  Tensor host = Tensor::empty({numel}, DType::f32);
  float* values = host.data<float>();
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull;
  for (std::int64_t i = 0; i < numel; ++i) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double unit = static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)
    values[i] = static_cast<float>((2.0 * unit - 1.0) * std::sqrt(3.0));
  }
  Tensor device = Tensor::empty({numel}, dtype, Device::cuda);
  device.copy_from(host);
  return device;
}

// Runs one case; a failure becomes a record with "error" so that the run goes on.
void run_case(JsonLine record, const std::function<void(JsonLine&)>& body) {
  try {
    body(record);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    record.add("error", error.what());
  }
  print(record);
}

// ---- a, b: attention --------------------------------------------------------------------

// Flat buffers for `tokens` tokens of H x dh, viewed per (B, T) with B x T <= tokens.
struct AttentionBuffers {
  Tensor q, k, v, dout, out, dq, dk, dv;  // (tokens * H * dh) bf16
  Tensor lse;                             // (tokens * H) f32

  AttentionBuffers(std::int64_t tokens, std::int64_t heads, std::int64_t head_dim) {
    const std::int64_t n = tokens * heads * head_dim;
    q = random_device_tensor(n, DType::bf16, 1);
    k = random_device_tensor(n, DType::bf16, 2);
    v = random_device_tensor(n, DType::bf16, 3);
    dout = random_device_tensor(n, DType::bf16, 4);
    for (Tensor* t : {&out, &dq, &dk, &dv}) *t = Tensor::empty({n}, DType::bf16, Device::cuda);
    lse = Tensor::empty({tokens * heads}, DType::f32, Device::cuda);
  }
};

void bench_attention(const Options& o, char part, const Sparsity& rule, std::int64_t seq_len,
                     AttentionBuffers& buffers, const std::string& device) {
  const std::int64_t batch = std::max<std::int64_t>(1, o.tokens / seq_len);
  char name[96];
  if (rule.is_dense()) {
    std::snprintf(name, sizeof name, "dense T=%lld B=%lld", static_cast<long long>(seq_len),
                  static_cast<long long>(batch));
  } else {
    std::snprintf(name, sizeof name, "dilated D=%d W=%d P=%d T=%lld B=%lld", rule.dilation,
                  rule.window, rule.initial, static_cast<long long>(seq_len),
                  static_cast<long long>(batch));
  }
  JsonLine record;
  record.add("part", std::string(1, part)).add("case", name).add("side", "ours")
      .add("impl", "ratrain").add("B", batch).add("T", seq_len).add("H", o.heads)
      .add("dh", o.head_dim).add("D", rule.dilation).add("W", rule.window).add("P", rule.initial)
      .add("device", device);
  run_case(record, [&](JsonLine& r) {
    const Shape x_shape = {batch, seq_len, o.heads, o.head_dim};  // (B, T, H, dh)
    const auto view = [&](const Tensor& t) { return t.flat_view(0, x_shape); };
    const Tensor q = view(buffers.q), k = view(buffers.k), v = view(buffers.v);
    const Tensor dout = view(buffers.dout);
    Tensor out = view(buffers.out), dq = view(buffers.dq), dk = view(buffers.dk),
           dv = view(buffers.dv);
    Tensor lse = buffers.lse.flat_view(0, {batch, o.heads, seq_len});  // (B, H, T)
    const cudaStream_t stream = cuda::compute_stream();
    const double fwd_ms = median_ms(
        [&] { ops::attention_forward(q, k, v, rule, out, lse); }, o.timing, stream);
    const double bwd_ms = median_ms(
        [&] { ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv); }, o.timing,
        stream);
    // FLOPs over the visible (query, key) pairs only (README.md): forward 4 dh per pair
    // per (b, h) for QK^T and PV, backward 2.5 x forward.
    const double pairs = std::round(mean_visible_keys(rule, seq_len) * static_cast<double>(seq_len));
    const double fwd_flops = 4.0 * static_cast<double>(o.head_dim * batch * o.heads) * pairs;
    const double bwd_flops = 2.5 * fwd_flops;
    const double ms = fwd_ms + bwd_ms;
    r.add("fwd_ms", fwd_ms).add("bwd_ms", bwd_ms).add("ms", ms).add("flops", fwd_flops + bwd_flops)
        .add("tflops", (fwd_flops + bwd_flops) / ms / 1e9).add("fwd_tflops", fwd_flops / fwd_ms / 1e9)
        .add("bwd_tflops", bwd_flops / bwd_ms / 1e9);
    std::fprintf(stderr, "%s ratrain: %.3f ms (%.1f TFLOP/s)\n", name, ms,
                 (fwd_flops + bwd_flops) / ms / 1e9);
  });
}

// ---- c: gated recurrence ------------------------------------------------------------------

// Minimal bytes per element (README.md): forward reads g, k, v (bf16) and writes gate (f32),
// K, V (bf16); backward reads gate (f32), k, v, K, V, dK, dV (bf16) and writes dg, dk, dv.
constexpr double kScanForwardBytes = 3 * 2 + 4 + 2 * 2;   // 14
constexpr double kScanBackwardBytes = 4 + 6 * 2 + 3 * 2;  // 22

// Flat buffers for `numel` = max B x T x C elements, viewed per shape.
struct ScanBuffers {
  Tensor g, k, v, dK, dV;       // inputs, bf16 (also q = v, dq_rope = dk_rope = dK with RoPE)
  Tensor K, V, dg, dk, dv;      // outputs, bf16
  Tensor q_rope, k_rope, dq;    // outputs of the RoPE forms, bf16
  Tensor gate;                  // f32

  explicit ScanBuffers(std::int64_t numel) {
    g = random_device_tensor(numel, DType::bf16, 5);
    k = random_device_tensor(numel, DType::bf16, 6);
    v = random_device_tensor(numel, DType::bf16, 7);
    dK = random_device_tensor(numel, DType::bf16, 8);
    dV = random_device_tensor(numel, DType::bf16, 9);
    for (Tensor* t : {&K, &V, &dg, &dk, &dv, &q_rope, &k_rope, &dq})
      *t = Tensor::empty({numel}, DType::bf16, Device::cuda);
    gate = Tensor::empty({numel}, DType::f32, Device::cuda);
  }
};

void bench_scan(const Options& o, std::int64_t batch, std::int64_t seq_len, ScanBuffers& buffers,
                const std::string& device) {
  char name[96];
  std::snprintf(name, sizeof name, "scan B=%lld T=%lld C=%lld", static_cast<long long>(batch),
                static_cast<long long>(seq_len), static_cast<long long>(o.channels));
  JsonLine record;
  record.add("part", "c").add("case", name).add("side", "ours").add("impl", "ratrain")
      .add("B", batch).add("T", seq_len).add("C", o.channels).add("device", device);
  run_case(record, [&](JsonLine& r) {
    const Shape shape = {batch, seq_len, o.channels};  // (B, T, C)
    const auto view = [&](const Tensor& t) { return t.flat_view(0, shape); };
    const Tensor g = view(buffers.g), k = view(buffers.k), v = view(buffers.v);
    const Tensor dK = view(buffers.dK), dV = view(buffers.dV);
    Tensor K = view(buffers.K), V = view(buffers.V), gate = view(buffers.gate);
    Tensor dg = view(buffers.dg), dk = view(buffers.dk), dv = view(buffers.dv);
    const TimingConfig timing{o.timing.warmup, o.scan_iters};
    const cudaStream_t stream = cuda::compute_stream();
    const double fwd_ms =
        median_ms([&] { ops::gated_scan_forward(g, k, v, gate, K, V); }, timing, stream);
    const double bwd_ms = median_ms(
        [&] { ops::gated_scan_backward(gate, k, v, K, V, dK, dV, dg, dk, dv); }, timing, stream);
    const double elements = static_cast<double>(batch * seq_len * o.channels);
    const double fwd_bytes = kScanForwardBytes * elements, bwd_bytes = kScanBackwardBytes * elements;
    const double ms = fwd_ms + bwd_ms;
    r.add("fwd_ms", fwd_ms).add("bwd_ms", bwd_ms).add("ms", ms).add("bytes", fwd_bytes + bwd_bytes)
        .add("GBps", (fwd_bytes + bwd_bytes) / ms / 1e6).add("fwd_GBps", fwd_bytes / fwd_ms / 1e6)
        .add("bwd_GBps", bwd_bytes / bwd_ms / 1e6);
    std::fprintf(stderr, "%s ratrain: %.3f ms (%.0f GB/s)\n", name, ms,
                 (fwd_bytes + bwd_bytes) / ms / 1e6);

    // The layer's recurrence + RoPE (forward and backward), in one pass against the scan
    // and four RoPE launches it replaces, on heads of dh = --head-dim.
    const Shape heads = {batch, seq_len, o.channels / o.head_dim, o.head_dim};
    const auto head_view = [&](const Tensor& t) { return t.flat_view(0, heads); };
    const Tensor g_h = head_view(buffers.g), k_h = head_view(buffers.k), q_h = head_view(buffers.v);
    const Tensor d_h = head_view(buffers.dK), dV_h = head_view(buffers.dV);
    Tensor gate_h = head_view(buffers.gate), K_h = head_view(buffers.K), V_h = head_view(buffers.V);
    Tensor q_rope = head_view(buffers.q_rope), k_rope = head_view(buffers.k_rope);
    Tensor dq = head_view(buffers.dq), dg_h = head_view(buffers.dg), dk_h = head_view(buffers.dk);
    Tensor dv_h = head_view(buffers.dv), dK_sep = head_view(buffers.k_rope);
    constexpr double kBase = 10000.0;
    const double fused_ms = median_ms(
        [&] {
          ops::gated_scan_rope_forward(g_h, k_h, q_h, q_h, kBase, 0, gate_h, K_h, V_h, q_rope,
                                       k_rope);
          ops::gated_scan_rope_backward(gate_h, k_h, q_h, K_h, V_h, d_h, d_h, dV_h, kBase, 0, dg_h,
                                        dk_h, dv_h, dq);
        },
        timing, stream);
    const double separate_ms = median_ms(
        [&] {
          ops::gated_scan_forward(g, k, v, gate, K, V);
          ops::rope_forward(q_h, kBase, 0, q_rope);
          ops::rope_forward(K_h, kBase, 0, k_rope);
          ops::rope_backward(d_h, kBase, 0, dq);
          ops::rope_backward(d_h, kBase, 0, dK_sep);
          ops::gated_scan_backward(gate, k, v, K, V, dK_sep.view(shape), dV, dg, dk, dv);
        },
        timing, stream);
    r.add("rope_fused_ms", fused_ms).add("rope_separate_ms", separate_ms)
        .add("rope_speedup", separate_ms / fused_ms);
    std::fprintf(stderr, "%s with RoPE: fused %.3f ms, separate %.3f ms (%.2fx)\n", name,
                 fused_ms, separate_ms, separate_ms / fused_ms);
  });
}

// Device-to-device copy of 1 GiB (20x the H100's L2), bytes counted read + write.
void bench_copy_bandwidth(const Options& o, const std::string& device) {
  constexpr std::int64_t kBytes = std::int64_t{1} << 30;
  JsonLine record;
  record.add("part", "c").add("case", "memcpy D2D 1 GiB").add("side", "reference")
      .add("impl", "cudaMemcpyAsync").add("device", device);
  run_case(record, [&](JsonLine& r) {
    const Tensor src = Tensor::empty({kBytes / 4}, DType::f32, Device::cuda);
    const Tensor dst = Tensor::empty({kBytes / 4}, DType::f32, Device::cuda);
    const cudaStream_t stream = cuda::compute_stream();
    const double ms = median_ms(
        [&] {
          RT_CHECK_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), kBytes, cudaMemcpyDeviceToDevice,
                                        stream));
        },
        o.timing, stream);
    const double bytes = 2.0 * static_cast<double>(kBytes);
    r.add("ms", ms).add("bytes", bytes).add("GBps", bytes / ms / 1e6);
    std::fprintf(stderr, "memcpy D2D: %.0f GB/s\n", bytes / ms / 1e6);
  });
}

void run(const Options& o) {
  RT_REQUIRE(cuda_available(), "bench_cuda_kernels: no CUDA device is visible");
  const std::string device = device_name();
  if (o.runs('a') || o.runs('b')) {
    const std::int64_t longest = *std::max_element(o.seq.begin(), o.seq.end());
    AttentionBuffers buffers(std::max(o.tokens, longest), o.heads, o.head_dim);
    for (const std::int64_t seq_len : o.seq) {
      if (o.runs('a')) bench_attention(o, 'a', Sparsity::dense(), seq_len, buffers, device);
      if (!o.runs('b')) continue;
      for (const std::int64_t dilation : o.dilations)
        for (const std::int64_t window : o.windows) {
          const Sparsity rule{static_cast<int>(dilation), static_cast<int>(window),
                              static_cast<int>(o.initial)};
          bench_attention(o, 'b', rule, seq_len, buffers, device);
        }
    }
  }
  if (o.runs('c')) {
    bench_copy_bandwidth(o, device);
    std::int64_t largest = 0;
    for (const auto& [batch, seq_len] : o.scan_shapes)
      largest = std::max(largest, batch * seq_len * o.channels);
    ScanBuffers buffers(largest);
    for (const auto& [batch, seq_len] : o.scan_shapes) bench_scan(o, batch, seq_len, buffers, device);
  }
}

}  // namespace
}  // namespace ratrain::bench

int main(int argc, char** argv) {
  try {
    ratrain::bench::run(ratrain::bench::parse_options(argc, argv));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_cuda_kernels: %s\n", error.what());
    return 1;
  }
  return 0;
}
