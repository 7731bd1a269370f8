#include "parallel/token_split.hpp"

#include <algorithm>

#include "parallel/sequence_split.hpp"

namespace ratrain {

Tensor local_tokens(const Tensor& tokens, const ParallelContext& ctx, SequenceSplit split) {
  RT_REQUIRE(tokens.rank() == 2 && tokens.dtype() == DType::i32 && tokens.device() == Device::cpu,
             "local_tokens takes a (B, T) int32 host tensor, got ", shape_str(tokens.shape()), " ",
             dtype_name(tokens.dtype()));
  const std::int64_t batch = tokens.dim(0), seq = tokens.dim(1);
  const int dp = ctx.dp.size(), sp = ctx.sp.size();
  RT_REQUIRE(batch % dp == 0, "the batch size (", batch, ") must be divisible by parallel.dp (",
             dp, "): data parallelism gives each rank the same number of samples");
  RT_REQUIRE(seq % sp == 0, "the sequence length (", seq, ") must be divisible by parallel.sp (",
             sp, "): sequence parallelism gives each rank the same number of positions");
  if (dp == 1 && sp == 1) return tokens;
  const std::int64_t rows = batch / dp, cols = seq / sp;
  const SequencePieces pieces(split, ctx.sp.rank(), sp, cols);
  const std::int64_t row0 = ctx.dp.rank() * rows;
  Tensor out = Tensor::empty({rows, cols}, DType::i32);
  const std::int32_t* in = tokens.data<std::int32_t>();
  std::int32_t* o = out.data<std::int32_t>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (int i = 0; i < pieces.count; ++i)
      std::copy_n(in + (row0 + r) * seq + pieces.begin(i), pieces.length,
                  o + r * cols + i * pieces.length);
  return out;
}

}  // namespace ratrain
