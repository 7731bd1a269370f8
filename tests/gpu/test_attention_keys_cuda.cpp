// CUDA attention over an explicit key set (attention_forward_keys, attention_backward_keys)
// and the log-sum-exp merge (attention_merge) against the f64 CPU reference of the same
// ops on the same (rounded) inputs. Key sets as sequence parallelism makes them: a rank's
// own chunk, an earlier rank's ring block, the dilated set (prefix + chunk ends + halo +
// own chunk, parallel/dilated_key_plan.hpp), arbitrary increasing subsets (some keys after
// every query), sets some or all queries cannot see (lse -inf, out 0), and the empty set;
// dense, dilated and local-only rules; Tq, Tk not multiples of the 32-row tiles; dh 16,
// 40, 64, 128, 256 (every columns-per-lane variant of the kernels); f32 and bf16.
// The backward is fed the reference out (rounded to the storage type) and lse (f32), and
// adds to nonzero dq, dk, dv.
// Tolerances (norm-wise relative, as tests/gpu/test_attention_cuda.cpp):
//   f32  1e-5: fp32 dot products and sums over at most ~1300 keys (~1e-6 expected).
//   bf16 2e-2: outputs rounded to bf16 (2^-9 relative each).
//   lse  1e-4 absolute where finite; -inf exactly where the reference has -inf.
// Gradients added to a start s of the gradient's own rms size are compared as
// ||got - (s + g)|| / ||g||: the sum's rounding then counts about as much as g's own.
// The split tests: forward over two disjoint key sets merged on the GPU equals the GPU
// forward over their union; backward over the two sets, summed, equals the backward over
// the union. Host-only tests check the kernels' tiling of a key set (attention_keys.cuh):
// every visible (query, key) pair covered once, every key owned once.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cuda/attention_keys.cuh"
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// How a case's key positions are made from its rule and query range [q_begin, q_end).
enum class KeySet {
  own_chunk,          // [q_begin, q_end): the rank's own chunk
  earlier_block,      // [q_begin - Tq, q_begin): an earlier rank's ring block
  sequence_parallel,  // prefix + chunk ends + halo + own chunk (dilated_key_plan.hpp)
  random_subset,      // each of [0, q_end + 40) with probability 1/2
  second_half,        // [q_begin + Tq / 2, q_end + 20): the first half of the queries sees nothing
  no_chunk_ends,      // [0, q_end) without chunk ends and prefix: far queries see nothing
  far_past,           // [0, 40): with a short window and no prefix, nothing is visible
  empty,              // no key at all
};

struct KeysCase {
  const char* name;
  Sparsity rule;  // {D, W, P}
  std::int64_t batch, heads, dh;
  std::int64_t q_begin, q_count;
  KeySet set;
};

const KeysCase kCases[] = {
    {"dense_own_b2h3_tq100_dh64", Sparsity::dense(), 2, 3, 64, 0, 100, KeySet::own_chunk},
    {"dense_own_b1h2_tq77_dh128_at300", Sparsity::dense(), 1, 2, 128, 300, 77, KeySet::own_chunk},
    {"dense_earlier_b1h2_tq77_dh128", Sparsity::dense(), 1, 2, 128, 300, 77, KeySet::earlier_block},
    {"dense_random_b2h2_tq130_dh64", Sparsity::dense(), 2, 2, 64, 50, 130, KeySet::random_subset},
    {"dense_second_half_b1h2_tq45_dh128", Sparsity::dense(), 1, 2, 128, 0, 45, KeySet::second_half},
    {"dense_one_query_b1h1_tq1_dh64", Sparsity::dense(), 1, 1, 64, 7, 1, KeySet::random_subset},
    {"d4w3p2_sp_b2h3_tq70_dh64", {4, 3, 2}, 2, 3, 64, 200, 70, KeySet::sequence_parallel},
    {"d16w0p0_sp_b1h2_tq333_dh128", {16, 0, 0}, 1, 2, 128, 1024, 333, KeySet::sequence_parallel},
    {"d64w40p5_sp_b1h2_tq150_dh128", {64, 40, 5}, 1, 2, 128, 900, 150, KeySet::sequence_parallel},
    {"d4w5p1_own_b2h2_tq150_dh64", {4, 5, 1}, 2, 2, 64, 40, 150, KeySet::own_chunk},
    {"d3w2p7_random_b2h2_tq90_dh64", {3, 2, 7}, 2, 2, 64, 20, 90, KeySet::random_subset},
    {"d8w2p0_no_ends_b1h2_tq40_dh128", {8, 2, 0}, 1, 2, 128, 50, 40, KeySet::no_chunk_ends},
    {"d8w0p3_earlier_b1h2_tq61_dh64", {8, 0, 3}, 1, 2, 64, 122, 61, KeySet::earlier_block},
    {"local_w7p2_sp_b1h3_tq65_dh64", {-1, 7, 2}, 1, 3, 64, 300, 65, KeySet::sequence_parallel},
    {"local_w4p0_far_b1h2_tq33_dh128", {-1, 4, 0}, 1, 2, 128, 100, 33, KeySet::far_past},
    {"local_w30p0_random_b1h2_tq97_dh128", {-1, 30, 0}, 1, 2, 128, 64, 97, KeySet::random_subset},
    {"dense_empty_b1h2_tq20_dh64", Sparsity::dense(), 1, 2, 64, 0, 20, KeySet::empty},
    // Over 1024 keys: three rounds of the kernels' 32-way search.
    {"dense_random_b1h1_tq1100_dh64", Sparsity::dense(), 1, 1, 64, 1500, 1100, KeySet::random_subset},
    {"local_w50p3_random_b1h1_tq300_dh128", {-1, 50, 3}, 1, 1, 128, 3000, 300, KeySet::random_subset},
    {"d4w1p3_sp_b1h2_tq50_dh16", {4, 1, 3}, 1, 2, 16, 64, 50, KeySet::sequence_parallel},
    {"d5w3p0_random_b1h2_tq70_dh40", {5, 3, 0}, 1, 2, 40, 30, 70, KeySet::random_subset},
    {"d4w2p1_sp_b1h1_tq40_dh256", {4, 2, 1}, 1, 1, 256, 80, 40, KeySet::sequence_parallel},
};

void PrintTo(const KeysCase& c, std::ostream* os) { *os << c.name; }

// The chunk ends {j in [begin, end) : (j + 1) % D == 0}; none unless D > 1.
void add_chunk_ends(std::vector<std::int32_t>& positions, std::int64_t begin, std::int64_t end, int d) {
  if (d <= 1) return;
  for (std::int64_t j = begin; j < end; ++j)
    if ((j + 1) % d == 0) positions.push_back(static_cast<std::int32_t>(j));
}

std::vector<std::int32_t> range_of(std::int64_t begin, std::int64_t end) {
  std::vector<std::int32_t> positions;
  for (std::int64_t j = std::max<std::int64_t>(begin, 0); j < end; ++j)
    positions.push_back(static_cast<std::int32_t>(j));
  return positions;
}

std::vector<std::int32_t> key_positions_of(const KeysCase& c) {
  const Sparsity& rule = c.rule;
  const std::int64_t q_end = c.q_begin + c.q_count;
  switch (c.set) {
    case KeySet::own_chunk: return range_of(c.q_begin, q_end);
    case KeySet::earlier_block: return range_of(c.q_begin - c.q_count, c.q_begin);
    case KeySet::sequence_parallel: {
      if (rule.is_dense()) return range_of(0, q_end);
      // prefix [0, a), chunk ends of [a, h), halo [h, c0), own [c0, c1).
      const std::int64_t c0 = c.q_begin, a = std::min<std::int64_t>(rule.initial, c0);
      const std::int64_t h = std::max<std::int64_t>(a, c0 - rule.window);
      std::vector<std::int32_t> positions = range_of(0, a);
      add_chunk_ends(positions, a, h, rule.dilation);
      for (const std::int32_t j : range_of(h, q_end)) positions.push_back(j);
      return positions;
    }
    case KeySet::random_subset: {
      const CounterRng rng(11, std::string("keys_") + c.name);
      std::vector<std::int32_t> positions;
      for (std::int64_t j = 0; j < q_end + 40; ++j)
        if (rng.below(static_cast<std::uint64_t>(j), 2) == 1) positions.push_back(static_cast<std::int32_t>(j));
      return positions;
    }
    case KeySet::second_half: return range_of(c.q_begin + c.q_count / 2, q_end + 20);
    case KeySet::no_chunk_ends: {
      std::vector<std::int32_t> positions;
      for (std::int64_t j = rule.initial; j < q_end; ++j)
        if (rule.dilation <= 1 || (j + 1) % rule.dilation != 0)
          positions.push_back(static_cast<std::int32_t>(j));
      // Keep only what lies 12 keys or more before the queries' end, so the last
      // queries see nothing.
      positions.erase(std::remove_if(positions.begin(), positions.end(),
                                     [&](std::int32_t j) { return j >= q_end - 12; }),
                      positions.end());
      return positions;
    }
    case KeySet::far_past: return range_of(0, 40);
    case KeySet::empty: return {};
  }
  return {};
}

Tensor int_tensor(const std::vector<std::int32_t>& values) {
  Tensor t = Tensor::empty({static_cast<std::int64_t>(values.size())}, DType::i32);
  std::copy(values.begin(), values.end(), t.data<std::int32_t>());
  return t;
}

// Rows `rows` (along dim 1) of a host (B, T, H, dh) tensor, as a new f64 tensor.
Tensor take_rows(const Tensor& t, const std::vector<std::int64_t>& rows) {
  const std::int64_t batch = t.dim(0), seq = t.dim(1), width = t.dim(2) * t.dim(3);
  const auto count = static_cast<std::int64_t>(rows.size());
  Tensor taken = Tensor::empty({batch, count, t.dim(2), t.dim(3)}, DType::f64);
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t n = 0; n < count; ++n)
      for (std::int64_t e = 0; e < width; ++e)
        taken.data<double>()[(b * count + n) * width + e] = t.item((b * seq + rows[n]) * width + e);
  return taken;
}

double rms(const Tensor& t) {
  double sum = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) sum += t.item(i) * t.item(i);
  return t.numel() > 0 ? std::sqrt(sum / double(t.numel())) : 0.0;
}

// ||got - (start + grad)|| / ||grad|| (absolute where grad is exactly zero).
double added_error(const Tensor& got, const Tensor& start, const Tensor& grad) {
  const Tensor a = got.to(DType::f64), s = start.to(DType::f64), g = grad.to(DType::f64);
  double diff = 0, norm = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    const double d = a.item(i) - (s.item(i) + g.item(i));
    diff += d * d;
    norm += g.item(i) * g.item(i);
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// Fails where lse differs from the reference: -inf exactly where the reference is -inf,
// else within 1e-4; and out must be exactly 0 on the rows of an -inf lse.
void expect_lse_and_empty_rows(const Tensor& lse, const Tensor& out, const Tensor& lse_ref,
                               const char* what) {
  const Tensor got = lse.to(DType::f64), outs = out.to(DType::f64);
  const std::int64_t batch = out.dim(0), seq = out.dim(1), heads = out.dim(2), dh = out.dim(3);
  int reported = 0;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t t = 0; t < seq; ++t) {
        const std::int64_t at = (b * heads + h) * seq + t;
        const double ref = lse_ref.item(at), value = got.item(at);
        bool ok = ref == kNegInf ? value == kNegInf : std::abs(value - ref) < 1e-4;
        if (ref == kNegInf)
          for (std::int64_t c = 0; c < dh; ++c) ok = ok && outs.item(((b * seq + t) * heads + h) * dh + c) == 0.0;
        if (!ok && reported++ < 5)
          ADD_FAILURE() << what << ": (b, h, t) = (" << b << ", " << h << ", " << t << "): lse "
                        << value << ", reference " << ref << " (out must be 0 where it is -inf)";
      }
}

// The inputs of one case: q, dout (B, Tq, H, dh), k, v (B, Tk, H, dh) rounded to the
// storage type, held in f64 on the host, and the key positions.
struct Inputs {
  Tensor q, k, v, dout;
  std::vector<std::int32_t> positions;
};

Inputs inputs_of(const KeysCase& c, DType dtype) {
  Inputs in;
  in.positions = key_positions_of(c);
  const auto keys = static_cast<std::int64_t>(in.positions.size());
  const Shape q_shape = {c.batch, c.q_count, c.heads, c.dh}, k_shape = {c.batch, keys, c.heads, c.dh};
  in.q = random_tensor(q_shape, "q", dtype);
  in.k = random_tensor(k_shape, "k", dtype);
  in.v = random_tensor(k_shape, "v", dtype);
  in.dout = random_tensor(q_shape, "dout", dtype);
  return in;
}

Shape lse_shape_of(const Tensor& q) { return {q.dim(0), q.dim(2), q.dim(1)}; }

// The f64 CPU forward of a key set.
std::pair<Tensor, Tensor> reference_forward(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                                            const Tensor& v, const std::vector<std::int32_t>& positions,
                                            const Sparsity& rule) {
  Tensor out = Tensor::empty(q.shape(), DType::f64), lse = Tensor::empty(lse_shape_of(q), DType::f64);
  ops::attention_forward_keys(q, q_begin, k, v, int_tensor(positions), rule, out, lse);
  return {out, lse};
}

class AttentionKeysCuda : public gpu_test::GpuTest,
                          public ::testing::WithParamInterface<std::tuple<DType, KeysCase>> {};

std::string case_name(const ::testing::TestParamInfo<AttentionKeysCuda::ParamType>& info) {
  const auto& [dtype, c] = info.param;
  return std::string(dtype_name(dtype)) + "_" + c.name;
}

TEST_P(AttentionKeysCuda, MatchesTheCpuReference) {
  const auto& [dtype, c] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 2e-2;
  const Inputs in = inputs_of(c, dtype);
  const Tensor positions_d = int_tensor(in.positions).to(Device::cuda);

  const auto [out_ref, lse_ref] = reference_forward(in.q, c.q_begin, in.k, in.v, in.positions, c.rule);
  Tensor dq_ref = Tensor::zeros(in.q.shape(), DType::f64), dk_ref = Tensor::zeros(in.k.shape(), DType::f64),
         dv_ref = Tensor::zeros(in.k.shape(), DType::f64);
  ops::attention_backward_keys(in.q, c.q_begin, in.k, in.v, int_tensor(in.positions), out_ref, lse_ref,
                               in.dout, c.rule, dq_ref, dk_ref, dv_ref);

  const Tensor qd = on_device(in.q, dtype), kd = on_device(in.k, dtype), vd = on_device(in.v, dtype);
  Tensor out = Tensor::empty(in.q.shape(), dtype, Device::cuda);
  Tensor lse = Tensor::empty(lse_shape_of(in.q), DType::f32, Device::cuda);
  ops::attention_forward_keys(qd, c.q_begin, kd, vd, positions_d, c.rule, out, lse);
  EXPECT_LT(relative_error(out, out_ref), tolerance) << "out";
  expect_lse_and_empty_rows(lse, out, lse_ref, "forward");

  // Backward adding to a start the size of each gradient (rounded to the storage type).
  const auto start_of = [&](const Tensor& grad, const char* name) {
    const double scale = rms(grad) > 0 ? rms(grad) : 1.0;
    return random_tensor(grad.shape(), std::string("start_") + name, dtype, 0.0, scale);
  };
  const Tensor dq0 = start_of(dq_ref, "dq"), dk0 = start_of(dk_ref, "dk"), dv0 = start_of(dv_ref, "dv");
  Tensor dq = on_device(dq0, dtype), dk = on_device(dk0, dtype), dv = on_device(dv0, dtype);
  ops::attention_backward_keys(qd, c.q_begin, kd, vd, positions_d, on_device(out_ref, dtype),
                               on_device(lse_ref, DType::f32), on_device(in.dout, dtype), c.rule,
                               dq, dk, dv);
  EXPECT_LT(added_error(dq, dq0, dq_ref), tolerance) << "dq";
  EXPECT_LT(added_error(dk, dk0, dk_ref), tolerance) << "dk";
  EXPECT_LT(added_error(dv, dv0, dv_ref), tolerance) << "dv";
}

INSTANTIATE_TEST_SUITE_P(KeySets, AttentionKeysCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::ValuesIn(kCases)),
                         case_name);

// ---- split: two disjoint key sets against their union -----------------------------------

class AttentionKeysSplitCuda : public AttentionKeysCuda {};

TEST_P(AttentionKeysSplitCuda, MergedPartsEqualTheUnion) {
  const auto& [dtype, c] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 2e-2;
  const Inputs in = inputs_of(c, dtype);
  // Interleaved parts, so that both hold keys most queries see: rows n % 3 == 1 and the
  // last fifth in part a, the rest in part b.
  const auto count = static_cast<std::int64_t>(in.positions.size());
  std::vector<std::int64_t> rows_a, rows_b;
  for (std::int64_t n = 0; n < count; ++n) (n % 3 == 1 || 5 * n >= 4 * count ? rows_a : rows_b).push_back(n);
  const auto positions_of = [&](const std::vector<std::int64_t>& rows) {
    std::vector<std::int32_t> p;
    for (const std::int64_t n : rows) p.push_back(in.positions[static_cast<std::size_t>(n)]);
    return p;
  };
  struct Part {
    Tensor k, v, positions;  // on the device
  };
  const auto part_of = [&](const std::vector<std::int64_t>& rows) {
    return Part{on_device(take_rows(in.k, rows), dtype), on_device(take_rows(in.v, rows), dtype),
                int_tensor(positions_of(rows)).to(Device::cuda)};
  };
  const Part a = part_of(rows_a), b = part_of(rows_b);
  const Part all{on_device(in.k, dtype), on_device(in.v, dtype), int_tensor(in.positions).to(Device::cuda)};
  const Tensor qd = on_device(in.q, dtype);
  const Shape lse_shape = lse_shape_of(in.q);
  const auto forward = [&](const Part& p) {
    std::pair<Tensor, Tensor> r{Tensor::empty(in.q.shape(), dtype, Device::cuda),
                                Tensor::empty(lse_shape, DType::f32, Device::cuda)};
    ops::attention_forward_keys(qd, c.q_begin, p.k, p.v, p.positions, c.rule, r.first, r.second);
    return r;
  };

  // Forward: merge(a, b) on the GPU == the GPU's union == the reference.
  auto [out, lse] = forward(a);
  const auto [out_b, lse_b] = forward(b);
  ops::attention_merge(out, lse, out_b, lse_b);
  const auto [out_all, lse_all] = forward(all);
  const auto [out_ref, lse_ref] = reference_forward(in.q, c.q_begin, in.k, in.v, in.positions, c.rule);
  EXPECT_LT(relative_error(out, out_all.to(DType::f64)), tolerance) << "merged out vs union";
  EXPECT_LT(relative_error(out, out_ref), tolerance) << "merged out vs reference";
  expect_lse_and_empty_rows(lse, out, lse_all.to(DType::f64), "merged vs union");
  expect_lse_and_empty_rows(lse, out, lse_ref, "merged vs reference");

  // Backward with the final out and lse: dq over a then b (added into one dq) == dq over
  // the union; each key's dk, dv from its part == its rows of the union's.
  const Tensor out_final = on_device(out_ref, dtype), lse_final = on_device(lse_ref, DType::f32);
  const Tensor doutd = on_device(in.dout, dtype);
  const auto zeros_like = [&](const Tensor& t) { return Tensor::zeros(t.shape(), dtype, Device::cuda); };
  const auto backward = [&](const Part& p, Tensor& dq, Tensor& dk, Tensor& dv) {
    ops::attention_backward_keys(qd, c.q_begin, p.k, p.v, p.positions, out_final, lse_final, doutd,
                                 c.rule, dq, dk, dv);
  };
  Tensor dq = zeros_like(qd), dk_a = zeros_like(a.k), dv_a = zeros_like(a.k), dk_b = zeros_like(b.k),
         dv_b = zeros_like(b.k);
  backward(a, dq, dk_a, dv_a);
  backward(b, dq, dk_b, dv_b);
  Tensor dq_all = zeros_like(qd), dk_all = zeros_like(all.k), dv_all = zeros_like(all.k);
  backward(all, dq_all, dk_all, dv_all);
  const Tensor dk_host = dk_all.to(DType::f64), dv_host = dv_all.to(DType::f64);
  EXPECT_LT(relative_error(dq, dq_all.to(DType::f64)), tolerance) << "dq";
  EXPECT_LT(relative_error(dk_a, take_rows(dk_host, rows_a)), tolerance) << "dk of part a";
  EXPECT_LT(relative_error(dv_a, take_rows(dv_host, rows_a)), tolerance) << "dv of part a";
  EXPECT_LT(relative_error(dk_b, take_rows(dk_host, rows_b)), tolerance) << "dk of part b";
  EXPECT_LT(relative_error(dv_b, take_rows(dv_host, rows_b)), tolerance) << "dv of part b";
}

const KeysCase kSplitCases[] = {
    {"dense_earlier_b1h2_tq77_dh128", Sparsity::dense(), 1, 2, 128, 300, 77, KeySet::earlier_block},
    {"dense_random_b2h2_tq130_dh64", Sparsity::dense(), 2, 2, 64, 50, 130, KeySet::random_subset},
    {"d16w0p0_sp_b1h2_tq333_dh128", {16, 0, 0}, 1, 2, 128, 1024, 333, KeySet::sequence_parallel},
    {"d4w3p2_sp_b2h3_tq70_dh64", {4, 3, 2}, 2, 3, 64, 200, 70, KeySet::sequence_parallel},
    {"local_w7p2_sp_b1h3_tq65_dh64", {-1, 7, 2}, 1, 3, 64, 300, 65, KeySet::sequence_parallel},
    {"d8w2p0_no_ends_b1h2_tq40_dh128", {8, 2, 0}, 1, 2, 128, 50, 40, KeySet::no_chunk_ends},
};

INSTANTIATE_TEST_SUITE_P(KeySets, AttentionKeysSplitCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::ValuesIn(kSplitCases)),
                         case_name);

class AttentionKeysChecksCuda : public gpu_test::GpuTest {};

// Merging with a part that saw nothing leaves a result bit for bit; merging into one
// copies the other in.
TEST_F(AttentionKeysChecksCuda, MergeWithAnEmptyPartIsExact) {
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Shape shape = {2, 37, 3, 64}, lse_shape = {2, 3, 37};
    const Tensor out_host = random_tensor(shape, "merge_out", dtype);
    const Tensor lse_host = random_tensor(lse_shape, "merge_lse", DType::f32, 3.0, 1.0);
    Tensor empty_lse_host = Tensor::empty(lse_shape, DType::f64);
    for (std::int64_t i = 0; i < empty_lse_host.numel(); ++i) empty_lse_host.data<double>()[i] = kNegInf;
    const Tensor empty_out = Tensor::zeros(shape, dtype, Device::cuda);
    const Tensor empty_lse = on_device(empty_lse_host, DType::f32);

    Tensor out = on_device(out_host, dtype), lse = on_device(lse_host, DType::f32);
    ops::attention_merge(out, lse, empty_out, empty_lse);  // adding nothing
    EXPECT_EQ(relative_error(out, out_host), 0.0) << dtype_name(dtype);
    EXPECT_EQ(relative_error(lse, lse_host), 0.0) << dtype_name(dtype);

    Tensor into = Tensor::zeros(shape, dtype, Device::cuda), into_lse = on_device(empty_lse_host, DType::f32);
    ops::attention_merge(into, into_lse, on_device(out_host, dtype), on_device(lse_host, DType::f32));
    EXPECT_EQ(relative_error(into, out_host), 0.0) << dtype_name(dtype);
    EXPECT_EQ(relative_error(into_lse, lse_host), 0.0) << dtype_name(dtype);

    Tensor both = Tensor::zeros(shape, dtype, Device::cuda), both_lse = on_device(empty_lse_host, DType::f32);
    ops::attention_merge(both, both_lse, empty_out, empty_lse);  // nothing and nothing
    EXPECT_EQ(gpu_test::relative_error(both, Tensor::zeros(shape, DType::f64)), 0.0);
    const Tensor both_lse_host = both_lse.to(DType::f64);
    for (std::int64_t i = 0; i < both_lse_host.numel(); ++i) ASSERT_EQ(both_lse_host.item(i), kNegInf);
  }
}

// Device key positions are checked on a host copy, with the CPU's messages.
TEST_F(AttentionKeysChecksCuda, BadDeviceKeyPositionsAreRejected) {
  const Shape q_shape = {1, 4, 2, 64}, k_shape = {1, 3, 2, 64};
  const Tensor q = Tensor::zeros(q_shape, DType::bf16, Device::cuda);
  const Tensor k = Tensor::zeros(k_shape, DType::bf16, Device::cuda);
  Tensor out = Tensor::empty(q_shape, DType::bf16, Device::cuda);
  Tensor lse = Tensor::empty({1, 2, 4}, DType::f32, Device::cuda);
  const auto forward = [&](const std::vector<std::int32_t>& positions) {
    const Tensor p = int_tensor(positions).to(Device::cuda);
    return error_of([&] { ops::attention_forward_keys(q, 0, k, k, p, Sparsity::dense(), out, lse); });
  };
  EXPECT_NE(forward({0, 2, 2}).find("strictly increasing"), std::string::npos);
  EXPECT_NE(forward({3, 1, 2}).find("entry 1 is 1 after 3"), std::string::npos);
  EXPECT_NE(forward({-1, 1, 2}).find("negative"), std::string::npos);
  Tensor dq = Tensor::zeros(q_shape, DType::bf16, Device::cuda), dk = Tensor::zeros(k_shape, DType::bf16, Device::cuda);
  const Tensor bad = int_tensor({0, 2, 2}).to(Device::cuda);
  EXPECT_NE(error_of([&] {
              ops::attention_backward_keys(q, 0, k, k, bad, q, lse, q, Sparsity::dense(), dq, dk, dk);
            }).find("strictly increasing"),
            std::string::npos);
  // lse must be f32 on the GPU whatever the storage type.
  Tensor bf16_lse = Tensor::empty({1, 2, 4}, DType::bf16, Device::cuda);
  EXPECT_NE(error_of([&] {
              ops::attention_forward_keys(q, 0, k, k, int_tensor({0, 1, 2}).to(Device::cuda),
                                          Sparsity::dense(), out, bf16_lse);
            }).find("lse must be f32"),
            std::string::npos);
}

// ---- the tiling of a key set, on the host ----------------------------------------------

// ListedQueryTilePlan's search on the host: a binary search.
struct HostSearch {
  template <typename Value>
  int operator()(int first, int end, int x, const Value& value) const {
    int lo = first, hi = end;
    while (lo < hi) {
      const int mid = lo + (hi - lo) / 2;
      if (value(mid) <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
};

// Every visible (query, key) pair is covered exactly once by the forward's key tiles of
// its query tile (masked as the kernel masks) and by the backward's query steps of its
// key tile; every key seen by some query has exactly one backward owner; tiles of 32.
void check_listed_tiling(const Sparsity& rule, int q_begin, int q_count,
                         const std::vector<std::int32_t>& positions) {
  constexpr int kBlock = 32;
  const int count = static_cast<int>(positions.size());
  const cuda::KeySets sets = cuda::KeySets::of(rule, q_begin + q_count);
  const std::vector<int> rows = cuda::global_rows_of(sets, positions.data(), count);
  const cuda::ListedKeys keys{sets, positions.data(), cuda::rows_are_leading(rows) ? nullptr : rows.data(),
                              count, static_cast<int>(rows.size()), q_begin, q_count};
  const auto where = [&](int t, int n) {
    return ::testing::Message() << "D = " << rule.dilation << ", W = " << rule.window << ", P = "
                                << rule.initial << ", q_begin = " << q_begin << ", Tq = " << q_count
                                << ", Tk = " << count << ", query row " << t << ", key row " << n;
  };
  std::vector<int> covered(static_cast<std::size_t>(q_count) * std::max(count, 1));
  const auto cell = [&](int t, int n) -> int& { return covered[static_cast<std::size_t>(t) * count + n]; };
  const auto expect_exact = [&](const char* what) {
    for (int t = 0; t < q_count; ++t)
      for (int n = 0; n < count; ++n)
        ASSERT_EQ(cell(t, n), is_visible(rule, q_begin + t, positions[n]) ? 1 : 0) << what << where(t, n);
  };

  for (int t0 = 0; t0 < q_count; t0 += kBlock) {
    const int t1 = std::min(t0 + kBlock, q_count);
    const auto plan = cuda::ListedQueryTilePlan::of(keys, t0, t1, kBlock, HostSearch{});
    for (int i = 0; i < plan.tiles; ++i) {
      const cuda::KeyTile tile = plan.tile(i, kBlock);
      ASSERT_TRUE(tile.count > 0 && tile.count <= kBlock) << where(t0, -1);
      for (int s = 0; s < tile.count; ++s) {
        const int n = keys.row(tile, s);
        ASSERT_TRUE(n >= 0 && n < count) << where(t0, n);
        for (int t = t0; t < t1; ++t) cell(t, n) += sets.visible(tile.local, q_begin + t, positions[n]);
      }
    }
  }
  expect_exact("forward: ");

  std::fill(covered.begin(), covered.end(), 0);
  std::vector<int> owners(static_cast<std::size_t>(count));
  const auto plan = cuda::ListedBackwardPlan::of(keys, kBlock);
  for (int i = 0; i < plan.tiles(); ++i) {
    const cuda::KeyTileWork work = plan.work(keys, i, kBlock);
    if (work.empty()) continue;
    const cuda::KeyTile& tile = work.keys;
    ASSERT_TRUE(work.query_first >= 0 && work.query_end <= q_count) << where(work.query_first, -1);
    for (int s = 0; s < tile.count; ++s) {
      const int n = keys.row(tile, s);
      const bool owned = !(tile.local && sets.is_global(positions[n]));
      owners[static_cast<std::size_t>(n)] += owned;
      // Only [query_first, query_end), though the kernel walks whole steps of 32 rows
      // (masked): so the range itself must hold every query that sees the tile.
      for (int t = work.query_first; t < work.query_end; ++t)
        cell(t, n) += owned && sets.visible(tile.local, q_begin + t, positions[n]);
    }
  }
  expect_exact("backward: ");
  for (int n = 0; n < count; ++n) {
    bool seen = false;
    for (int t = 0; t < q_count; ++t) seen = seen || is_visible(rule, q_begin + t, positions[n]);
    ASSERT_LE(owners[static_cast<std::size_t>(n)], 1) << "owners" << where(-1, n);
    if (seen) {
      ASSERT_EQ(owners[static_cast<std::size_t>(n)], 1) << "owner" << where(-1, n);
    }
  }
}

TEST(AttentionKeysTiling, CoversEveryVisiblePairOnce) {
  for (const int d : {1, 2, 4, 16, 64, -1})
    for (const int w : {0, 2, 7, 70})
      for (const int p : {0, 3, 70})
        for (const int q_begin : {0, 5, 100, 300})
          for (const int q_count : {1, 33, 64, 130}) {
            const std::int64_t q_end = q_begin + q_count;
            KeysCase c{"tiling", {d, w, p}, 1, 1, 8, q_begin, q_count, KeySet::own_chunk};
            for (const KeySet set : {KeySet::own_chunk, KeySet::earlier_block, KeySet::sequence_parallel,
                                     KeySet::random_subset, KeySet::no_chunk_ends}) {
              c.set = set;
              check_listed_tiling(c.rule, q_begin, q_count, key_positions_of(c));
              if (::testing::Test::HasFatalFailure()) return;
            }
            // Every position before the queries' end and 30 after: globals not leading.
            check_listed_tiling(c.rule, q_begin, q_count, range_of(0, q_end + 30));
            if (::testing::Test::HasFatalFailure()) return;
          }
}

}  // namespace
}  // namespace ratrain
