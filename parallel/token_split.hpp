// Which tokens of a global batch a rank works on (DESIGN.md "Parallel layout"): data
// parallelism splits the samples (rows), sequence parallelism each sample's positions
// (columns, contiguous chunks); tensor- and pipeline-parallel ranks see the same tokens.
//
// Worked example: a (8, 12) batch, dp = 2, sp = 3. The rank with dp coordinate 1 and
// sp coordinate 2 gets rows 4-7 and columns 8-11, a (4, 4) block.
#pragma once

#include "parallel/parallel_context.hpp"

namespace ratrain {

// tokens (B, T) i32 on the host, the whole batch (the same on every rank) -> this
// rank's (B / dp, T / sp) block, a contiguous copy. B must divide by dp and T by sp
// (an error names the config keys otherwise).
Tensor local_tokens(const Tensor& tokens, const ParallelContext& ctx);

// The sum over the ranks whose blocks make up the batch (dp and sp) of a per-block
// value, such as a loss sum or a label count: the partner of local_tokens. Collective
// over ctx.sp and ctx.dp; the same on every rank.
inline double sum_over_token_blocks(double value, const ParallelContext& ctx) {
  return ctx.dp.all_reduce_sum(ctx.sp.all_reduce_sum(value));
}

}  // namespace ratrain
