// Which tokens of a global batch a rank works on (DESIGN.md "Parallel layout"): data
// parallelism splits the samples (rows), sequence parallelism each sample's positions
// (columns: one contiguous chunk, or two zigzag chunks, parallel/sequence_split.hpp);
// tensor- and pipeline-parallel ranks see the same tokens.
//
// Worked example: a (8, 12) batch, dp = 2, sp = 3. The rank with dp coordinate 1 and
// sp coordinate 2 gets rows 4-7 and, contiguous, columns 8-11, a (4, 4) block; zigzag
// (6 chunks of 2), columns 4-5 then 6-7 (chunks 2 and 3).
#pragma once

#include "parallel/parallel_context.hpp"

namespace ratrain {

// tokens (B, T) i32 on the host, the whole batch (the same on every rank) -> this
// rank's (B / dp, T / sp) block under `split`, a contiguous copy in token order (per
// sample, the rank's first piece then its second). B must divide by dp and T by sp, and
// by 2 sp for zigzag (an error names the config keys otherwise). The split is the
// pass's (pass_split; RatLM::sequence_split tells it for a mode).
Tensor local_tokens(const Tensor& tokens, const ParallelContext& ctx, SequenceSplit split);

// The sum over the ranks whose blocks make up the batch (dp and sp) of a per-block
// value, such as a loss sum or a label count: the partner of local_tokens. Collective
// over ctx.sp and ctx.dp; the same on every rank.
inline double sum_over_token_blocks(double value, const ParallelContext& ctx) {
  return ctx.dp.all_reduce_sum(ctx.sp.all_reduce_sum(value));
}

}  // namespace ratrain
