"""Shared helpers of the PyTorch baselines (benchmarks/README.md).

- Timing: CUDA events around each call, after warm-up calls, median over iterations.
- Output: one JSON object per line on stdout (the record schema of README.md); logs go
  to stderr, so stdout stays machine-readable.
- Counting: the attention FLOPs and visible-pair counts that both sides of the
  comparison use (the C++ side counts with model/flops.hpp's mean_visible_keys).
- Checking: a dense fp32 reference of attention under the RAT+ visibility rule, used
  to prove that a baseline computes the right function before its time is reported.
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from typing import Callable, Sequence

import torch

# Relative (norm-wise) error a bf16 output or gradient may have against an fp32 (or
# fp64) reference on the same bf16 inputs: outputs are rounded to 8 mantissa bits
# (2^-9 = 2e-3 per element), probabilities and gradients pass through bf16 inside the
# kernels, and fp32 sums run in another order. A wrong LSE base, a misapplied or missing
# block mask, or a wrong merge gives errors of order 1e-1 and more. (A single key
# counted twice per row would hide below this; the two-part masks are therefore checked
# exhaustively against the visibility rule at small T, see README.md.)
BF16_REL_TOLERANCE = 2e-2


def emit(record: dict) -> None:
    """Prints one measurement as a JSON line on stdout."""
    print(json.dumps(record), flush=True)


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def parse_int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def raise_recompile_limit(limit: int = 64) -> None:
    """Benchmarks compile one graph per shape on purpose (dynamic=False, as a training
    run at a fixed T would); Dynamo's default limit of 8 would otherwise drop to an
    unfused eager path silently. Recompilations are logged to stderr for the record."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, limit)
    for name in ("accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), 4 * limit))
    torch._logging.set_logs(recompiles=True)


def time_cuda_ms(fn: Callable[[], object], warmup: int, iters: int) -> list[float]:
    """Milliseconds of each of `iters` calls of fn, each bracketed by CUDA events on the
    current stream, after `warmup` untimed calls. The calls are enqueued back to back
    (no host synchronisation between them), as in a training loop."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in zip(starts, ends)]


def median_ms(fn: Callable[[], object], warmup: int, iters: int) -> float:
    return statistics.median(time_cuda_ms(fn, warmup, iters))


def device_record() -> dict:
    """Fields naming the machine and software, added to every record."""
    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "torch": torch.__version__, "cuda": torch.version.cuda}


# ---- counting ------------------------------------------------------------------------

def visible_keys(i: int, dilation: int, window: int, initial: int) -> int:
    """Number of keys query i sees under the RAT+ rule (kernels/visibility.hpp): the
    disjoint union of prefix [0, min(P, lo)), chunk ends {j in [P, lo): (j+1) % D == 0}
    and local [lo, i], lo = max(0, i - W). The chunk ends are the multiples of D in
    [P + 1, lo] shifted by one, hence floor(lo / D) - floor(P / D) of them.
    Worked example (visibility.hpp): D = 4, W = 2, P = 1, i = 13 -> lo = 11, prefix 1,
    chunk ends 11 // 4 - 1 // 4 = 2 ({3, 7}), local 3: 6 keys."""
    if dilation == 1:
        return i + 1
    lo = max(0, i - window)
    count = (i - lo + 1) + min(initial, lo)
    if dilation > 1 and lo > initial:
        count += lo // dilation - initial // dilation
    return count


def visible_pairs(seq_len: int, dilation: int, window: int, initial: int) -> int:
    """Visible (query, key) pairs of one (batch, head) over a sequence of seq_len."""
    if dilation == 1:
        return seq_len * (seq_len + 1) // 2
    return sum(visible_keys(i, dilation, window, initial) for i in range(seq_len))


def attention_flops(batch: int, heads: int, head_dim: int, pairs: int) -> tuple[float, float]:
    """(forward, backward) FLOPs of attention over `pairs` visible pairs per (b, h).
    Forward: QK^T and PV, 2 FLOPs per multiply-add each -> 4 * dh per pair. Backward:
    dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q plus the QK^T recomputation:
    5 matmuls -> 2.5 x forward (the convention of the FlashAttention papers).
    Only visible pairs count: masked work a kernel does anyway is not useful work."""
    forward = 4.0 * head_dim * batch * heads * pairs
    return forward, 2.5 * forward


# ---- correctness ----------------------------------------------------------------------

def visibility_mask(seq_len: int, dilation: int, window: int, initial: int,
                    device: torch.device) -> torch.Tensor:
    """(T, T) bool, True where key j is visible to query i (the plain predicate of
    kernels/visibility.hpp is_visible)."""
    i = torch.arange(seq_len, device=device)[:, None]
    j = torch.arange(seq_len, device=device)[None, :]
    causal = j <= i
    if dilation == 1:
        return causal
    near = (i - j <= window) | (j < initial)
    if dilation > 1:
        near = near | ((j + 1) % dilation == 0)
    return causal & near


def relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    """||got - ref|| / ||ref|| in fp64."""
    got, ref = got.detach().double(), ref.detach().double()
    return float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))


def check_attention(out: torch.Tensor, lse: torch.Tensor | None, leaves: Sequence[torch.Tensor],
                    dout: torch.Tensor, rule: tuple[int, int, int], heads: int = 2) -> dict:
    """Compares a benchmarked attention call with a dense fp32 reference on batch 0,
    heads [0, heads). Heads and batches are independent, so the slice of the full
    call's output and gradients equals the reference on the sliced inputs.
      out (B, H, T, dh) from the call, still attached to its graph; lse (B, H, T) or None;
      leaves: q, k, v (B, T, H, dh) leaf tensors; dout (B, H, T, dh)."""
    q, k, v = leaves
    grads = torch.autograd.grad(out, leaves, dout, retain_graph=True)
    seq_len, head_dim = q.shape[1], q.shape[3]
    # (heads, T, dh) fp32 copies of the sliced, already-bf16 inputs.
    qr, kr, vr = (x[0, :, :heads].transpose(0, 1).float().requires_grad_() for x in leaves)
    scores = qr @ kr.transpose(1, 2) / math.sqrt(head_dim)  # (heads, T, T)
    scores = scores.masked_fill(~visibility_mask(seq_len, *rule, device=q.device), -math.inf)
    lse_ref = torch.logsumexp(scores, dim=-1)
    out_ref = torch.softmax(scores, dim=-1) @ vr
    dout_ref = dout[0, :heads].float()
    grads_ref = torch.autograd.grad(out_ref, (qr, kr, vr), dout_ref)
    errors = {"out": relative_error(out[0, :heads], out_ref)}
    if lse is not None:
        errors["lse"] = relative_error(lse[0, :heads], lse_ref)
    for name, got, ref in zip(("dq", "dk", "dv"), grads, grads_ref):
        errors[name] = relative_error(got[0, :, :heads].transpose(0, 1), ref)
    worst = max(errors.values())
    return {"check_rel_err": {k: round(e, 6) for k, e in errors.items()},
            "check_ok": bool(worst < BF16_REL_TOLERANCE)}
