"""Parts a and b of the GPU benchmarks, PyTorch side (benchmarks/README.md).

a. Dense causal attention, forward + backward, bf16, H = 16, dh = 128, T in --seq and
   B = tokens // T: torch SDPA under each CUDA backend (flash, efficient, cuDNN), one
   record per backend, then under every registered alternative flash implementation
   (e.g. FA3) if this PyTorch offers one. The report takes the fastest and names it.
b. Dilated attention, D in --dilations, W in --windows, P = --initial, same shapes: the
   authors' two-part FlexAttention scheme (dilated_flex.py), the whole function under
   torch.compile (both flex kernels and the log-sum-exp merge fused), backward through
   autograd. If that compile fails, flex_attention alone is compiled and the merge runs
   eagerly (the record's impl says which).

Layout as in the model: q, k, v are (B, T, H, dh) leaf tensors viewed as (B, H, T, dh).
Forward and backward are timed apart: the backward is torch.autograd.grad of one
forward's output with retain_graph (no .grad accumulation), so fwd_ms + bwd_ms is the
attention cost of one training step. Before any time of an implementation is reported,
its first sequence length <= --check-max-seq is compared with a dense fp32 reference
(check_ok in the record).

  python3 benchmarks/torch/bench_attention.py --parts a,b > attention.jsonl
"""
from __future__ import annotations

import argparse
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import flex_attention

from bench_common import (attention_flops, check_attention, device_record, emit, log, median_ms,
                          parse_int_list, raise_recompile_limit, visible_pairs)
from dilated_flex import check_two_part_split, dilated_attention, make_dilated_masks

SDPA_BACKENDS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
}


class Inputs:
    """Random bf16 q, k, v (B, T, H, dh) leaves, their (B, H, T, dh) views, and dout."""

    def __init__(self, batch: int, seq_len: int, heads: int, head_dim: int):
        shape = (batch, seq_len, heads, head_dim)
        make = lambda: torch.randn(shape, device="cuda", dtype=torch.bfloat16)  # noqa: E731
        self.leaves = [make().requires_grad_() for _ in range(3)]
        self.q, self.k, self.v = (x.transpose(1, 2) for x in self.leaves)
        self.dout = make().transpose(1, 2)


def measure(forward: Callable[[], object], inputs: Inputs, args) -> tuple[float, float, object]:
    """(forward ms, backward ms, one retained forward result). Warm-up calls compile."""
    fwd_ms = median_ms(forward, args.warmup, args.iters)
    result = forward()
    out = result[0] if isinstance(result, tuple) else result
    backward = lambda: torch.autograd.grad(out, inputs.leaves, inputs.dout,  # noqa: E731
                                           retain_graph=True)
    bwd_ms = median_ms(backward, args.warmup, args.iters)
    return fwd_ms, bwd_ms, result


def run_case(part: str, case: str, impl: str, rule: tuple[int, int, int], batch: int,
             seq_len: int, make_forward: Callable[[], Callable[[], object]], inputs: Inputs,
             check: bool, args) -> bool:
    """Times one implementation on one case and emits its record; False on failure.
    make_forward builds the timed callable (block masks included) inside the guard."""
    dilation, window, initial = rule
    record = {"part": part, "case": case, "side": "baseline", "impl": impl, "B": batch,
              "T": seq_len, "H": args.heads, "dh": args.head_dim, "D": dilation, "W": window,
              "P": initial}
    try:
        fwd_ms, bwd_ms, result = measure(make_forward(), inputs, args)
        if check:
            out, lse = result if isinstance(result, tuple) else (result, None)
            record.update(check_attention(out, lse, inputs.leaves, inputs.dout, rule))
        del result
    except Exception as error:  # compile, backend and memory errors all end up here
        log(f"{case} {impl}: FAILED: {error!r}")
        emit({**record, "error": repr(error)[:400], **device_record()})
        torch.cuda.empty_cache()
        return False
    pairs = visible_pairs(seq_len, *rule)
    fwd_flops, bwd_flops = attention_flops(batch, args.heads, args.head_dim, pairs)
    ms = fwd_ms + bwd_ms
    record.update({"fwd_ms": fwd_ms, "bwd_ms": bwd_ms, "ms": ms,
                   "flops": fwd_flops + bwd_flops, "tflops": (fwd_flops + bwd_flops) / ms / 1e9,
                   "fwd_tflops": fwd_flops / fwd_ms / 1e9, "bwd_tflops": bwd_flops / bwd_ms / 1e9,
                   **device_record()})
    emit(record)
    verdict = {None: "", True: ", check ok", False: ", CHECK FAILED"}[record.get("check_ok")]
    log(f"{case} {impl}: {ms:.3f} ms ({record['tflops']:.1f} TFLOP/s{verdict})")
    return True


def sdpa_forward(inputs: Inputs, backend: SDPBackend) -> Callable[[], torch.Tensor]:
    def forward():
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(inputs.q, inputs.k, inputs.v, is_causal=True)
    return forward


def extra_flash_impls() -> list[str]:
    """Alternative flash implementations this PyTorch can route SDPA's flash backend to
    (PyTorch >= 2.10: torch.nn.attention.list_flash_attention_impls, e.g. "FA3")."""
    lister = getattr(torch.nn.attention, "list_flash_attention_impls", None)
    try:
        return list(lister()) if lister else []
    except Exception as error:
        log(f"list_flash_attention_impls failed: {error!r}")
        return []


class Dilated:
    """The compiled two-part function, falling back to compiled flex + eager merge once
    the whole-function compile has failed."""

    def __init__(self):
        self.whole = torch.compile(dilated_attention, fullgraph=True, dynamic=False)
        self.flex = torch.compile(flex_attention, dynamic=False)
        self.whole_failed = False

    def impl(self) -> str:
        return "flex_two_part_eager_merge" if self.whole_failed else "flex_two_part_compiled"

    def forward(self, inputs: Inputs, dilation: int, masks) -> Callable[[], object]:
        if self.whole_failed:
            return lambda: dilated_attention(inputs.q, inputs.k, inputs.v, dilation, *masks,
                                             flex=self.flex)
        return lambda: self.whole(inputs.q, inputs.k, inputs.v, dilation, *masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="a,b", help="comma list of a, b")
    parser.add_argument("--seq", default="4096,8192,16384,32768", help="sequence lengths T")
    parser.add_argument("--tokens", type=int, default=32768, help="B = tokens // T")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--dilations", default="16,64")
    parser.add_argument("--windows", default="0,256")
    parser.add_argument("--initial", type=int, default=0, help="P")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--check-max-seq", type=int, default=8192,
                        help="check the first T up to this against the fp32 reference")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    seqs = parse_int_list(args.seq)
    check_seq = min((t for t in seqs if t <= args.check_max_seq), default=None)
    torch.manual_seed(0)
    raise_recompile_limit()
    dilated = Dilated()
    if "b" in parts:
        check_two_part_split()  # raises (and fails the run) if the masks do not tile the rule
        emit({"part": "b", "case": "two-part mask split", "side": "check", "impl": "dilated_flex.py",
              "check_ok": True, **device_record()})

    for seq_len in seqs:
        batch = max(1, args.tokens // seq_len)
        inputs = Inputs(batch, seq_len, args.heads, args.head_dim)
        check = seq_len == check_seq
        if "a" in parts:
            case = f"dense T={seq_len} B={batch}"
            for impl, backend in SDPA_BACKENDS.items():
                run_case("a", case, impl, (1, 0, 0), batch, seq_len,
                         lambda: sdpa_forward(inputs, backend), inputs, check, args)
        if "b" in parts:
            for dilation in parse_int_list(args.dilations):
                for window in parse_int_list(args.windows):
                    rule = (dilation, window, args.initial)
                    case = f"dilated D={dilation} W={window} P={args.initial} T={seq_len} B={batch}"
                    make_forward = lambda: dilated.forward(  # noqa: E731
                        inputs, dilation, make_dilated_masks(seq_len, *rule, device=inputs.q.device))
                    ok = run_case("b", case, dilated.impl(), rule, batch, seq_len, make_forward,
                                  inputs, check, args)
                    if not ok and not dilated.whole_failed:
                        dilated.whole_failed = True
                        run_case("b", case, dilated.impl(), rule, batch, seq_len, make_forward,
                                 inputs, check, args)
        del inputs
        torch.cuda.empty_cache()

    # Activating an alternative flash implementation is process-wide and cannot be
    # undone, so these run after every standard measurement.
    if "a" in parts:
        for name in extra_flash_impls():
            impl = f"sdpa_flash_{name}"
            try:
                torch.nn.attention.activate_flash_attention_impl(name)
            except Exception as error:
                log(f"flash implementation {name} unavailable: {error!r}")
                for seq_len in seqs:
                    emit({"part": "a", "case": f"dense T={seq_len} B={max(1, args.tokens // seq_len)}",
                          "side": "baseline", "impl": impl, "error": repr(error)[:400],
                          **device_record()})
                continue
            for seq_len in seqs:
                batch = max(1, args.tokens // seq_len)
                inputs = Inputs(batch, seq_len, args.heads, args.head_dim)
                run_case("a", f"dense T={seq_len} B={batch}", impl, (1, 0, 0), batch, seq_len,
                         lambda: sdpa_forward(inputs, SDPBackend.FLASH_ATTENTION), inputs,
                         seq_len == check_seq, args)
                del inputs
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
