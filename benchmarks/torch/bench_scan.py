"""Part c of the GPU benchmarks, PyTorch side: the RAT+ gated recurrence (benchmarks/README.md).

g, k, v (B, T, C) bf16 with B x T in --shapes and C = --channels; the recurrence in
fp32 through torch.compile'd associative_scan (gated_scan.py) in two differentiable
forms, one record each: "manual_bwd" (autograd.Function with the reverse-scan
backward, saving gate, k, v, K, V like ratrain's op) and "autograd" (PyTorch
differentiates through associative_scan). The report takes the faster.
Forward and backward are timed apart (backward: torch.autograd.grad with
retain_graph of one forward's K, V).

Bytes per element, the same count on both sides (the op's minimal traffic, bf16
storage, f32 gate): forward reads g, k, v (2 + 2 + 2) and writes gate, K, V (4 + 2 + 2):
14 B; backward reads gate, k, v, K, V, dK, dV (4 + 6 x 2) and writes dg, dk, dv (3 x 2):
22 B. GB/s = bytes / time; the report divides by the measured device copy bandwidth.

  python3 benchmarks/torch/bench_scan.py > scan.jsonl
"""
from __future__ import annotations

import argparse

import torch

from bench_common import (BF16_REL_TOLERANCE, device_record, emit, log, median_ms,
                          raise_recompile_limit, relative_error)
from gated_scan import SCAN_VARIANTS, reference_scan

FORWARD_BYTES_PER_ELEMENT = 14
BACKWARD_BYTES_PER_ELEMENT = 22
CHECK_CHANNELS = 64  # channels of batch 0 compared with the fp64 sequential loop


def check_scan(K, V, leaves, grad_outputs) -> dict:
    """Relative errors of K, V and dg, dk, dv on batch 0, channels [0, 64), against the
    fp64 sequential recurrence. Channels are independent, so the slice of the full
    call equals the reference on the sliced inputs."""
    grads = torch.autograd.grad((K, V), leaves, grad_outputs, retain_graph=True)
    sliced = [x[:1, :, :CHECK_CHANNELS].double().requires_grad_() for x in leaves]
    K_ref, V_ref = reference_scan(*sliced)
    d_sliced = [d[:1, :, :CHECK_CHANNELS].double() for d in grad_outputs]
    grads_ref = torch.autograd.grad((K_ref, V_ref), sliced, d_sliced)
    errors = {"K": relative_error(K[:1, :, :CHECK_CHANNELS], K_ref),
              "V": relative_error(V[:1, :, :CHECK_CHANNELS], V_ref)}
    for name, got, ref in zip(("dg", "dk", "dv"), grads, grads_ref):
        errors[name] = relative_error(got[:1, :, :CHECK_CHANNELS], ref)
    return {"check_rel_err": {k: round(e, 6) for k, e in errors.items()},
            "check_ok": bool(max(errors.values()) < BF16_REL_TOLERANCE)}


def bench_variant(name: str, batch: int, seq_len: int, channels: int, check: bool, args) -> None:
    shape = (batch, seq_len, channels)
    leaves = [torch.randn(shape, device="cuda", dtype=torch.bfloat16).requires_grad_()
              for _ in range(3)]  # g, k, v
    grad_outputs = [torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    scan = torch.compile(SCAN_VARIANTS[name], dynamic=False)
    record = {"part": "c", "case": f"scan B={batch} T={seq_len} C={channels}",
              "side": "baseline", "impl": f"torch_assoc_scan_{name}", "B": batch, "T": seq_len,
              "C": channels}
    try:
        fwd_ms = median_ms(lambda: scan(*leaves), args.warmup, args.iters)
        K, V = scan(*leaves)
        bwd_ms = median_ms(lambda: torch.autograd.grad((K, V), leaves, grad_outputs,
                                                       retain_graph=True),
                           args.warmup, args.iters)
        if check:
            record.update(check_scan(K, V, leaves, grad_outputs))
        del K, V
    except Exception as error:  # compile errors (e.g. no autograd for the scan) land here
        log(f"{record['case']} {record['impl']}: FAILED: {error!r}")
        emit({**record, "error": repr(error)[:400], **device_record()})
        torch.cuda.empty_cache()
        return
    elements = batch * seq_len * channels
    fwd_bytes = FORWARD_BYTES_PER_ELEMENT * elements
    bwd_bytes = BACKWARD_BYTES_PER_ELEMENT * elements
    ms = fwd_ms + bwd_ms
    record.update({"fwd_ms": fwd_ms, "bwd_ms": bwd_ms, "ms": ms, "bytes": fwd_bytes + bwd_bytes,
                   "GBps": (fwd_bytes + bwd_bytes) / ms / 1e6,
                   "fwd_GBps": fwd_bytes / fwd_ms / 1e6, "bwd_GBps": bwd_bytes / bwd_ms / 1e6,
                   **device_record()})
    emit(record)
    verdict = {None: "", True: ", check ok", False: ", CHECK FAILED"}[record.get("check_ok")]
    log(f"{record['case']} {record['impl']}: {ms:.3f} ms ({record['GBps']:.0f} GB/s{verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="1x4096,8x4096,1x32768", help="B x T list")
    parser.add_argument("--channels", type=int, default=2048)
    parser.add_argument("--variants", default=",".join(SCAN_VARIANTS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    raise_recompile_limit()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    for index, (batch, seq_len) in enumerate(shapes):
        for name in args.variants.split(","):
            bench_variant(name, batch, seq_len, args.channels, index == 0, args)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
