#!/usr/bin/env python3
"""GPU memory per rank of a ratrain training run, from the config and the parallel layout
(DESIGN.md "Folders": the performance model of benchmarks/), before a job is submitted.

It counts what the CUDA backend allocates (bf16 values, f32 master, gradients and AdamW
moments, model/param_store.hpp and model/adamw.cpp; the activations a layer saves,
model/rat_block.hpp BlockActivations; one BlockScratch; the attention backward's f32 dq;
the cross-entropy's row block of f32 logits, kernels/cuda/cross_entropy.cu) for the rank
that holds the most: the first pipeline stage (embedding, and min(pp, micro-batches)
micro-batches in flight under 1F1B). Sizes are the layout's: heads and FFN columns split
over tp, the vocabulary over tp, layers over pp, the sequence over sp, the optimizer
moments over dp (ZeRO-1; the f32 master stays whole on every rank: README "departures").

  python3 benchmarks/memory_model.py configs/7.6b.ini --layouts tp=2,pp=2,sp=2 tp=8 dp=8 \\
      --set train.seq_len=4096 train.batch_size=8
  python3 benchmarks/memory_model.py configs/1.5b.ini --longest sp=8 --gpu-gib 141
  python3 benchmarks/memory_model.py --check      # against measured peaks (RESULTS.md)

--longest prints the longest T (a power of two times 1024, up to 1M) whose estimate fits
in --gpu-gib less --reserve-gib (CUDA context, cuBLAS workspace, NCCL buffers, allocator
slack). --check compares the estimates with peak memory that `ratrain bench` measured
(benchmarks/RESULTS.md) and exits 1 if any is off by more than 5 %.
"""
from __future__ import annotations

import argparse
import configparser
import sys
from dataclasses import dataclass

GIB = 1 << 30
LOGITS_BUDGET = 256 << 20  # kernels/cuda/cross_entropy.cu: f32 logits per row block
MAX_T = 1 << 20


@dataclass
class Run:
    vocab: int
    d: int
    heads: int
    layers: int
    ffn_mult: int
    seq_len: int
    batch: int
    micro_batch: int  # 0 = the whole per-rank batch
    recompute: bool


@dataclass
class Layout:
    tp: int = 1
    sp: int = 1
    pp: int = 1
    dp: int = 1

    @staticmethod
    def parse(text: str) -> "Layout":
        layout = Layout()
        for part in filter(None, text.split(",")):
            axis, _, size = part.partition("=")
            if axis not in ("tp", "sp", "pp", "dp") or not size.isdigit() or int(size) < 1:
                sys.exit(f"memory_model: bad layout part '{part}' (want e.g. tp=2,pp=2,sp=2)")
            setattr(layout, axis, int(size))
        return layout

    def __str__(self) -> str:
        return f"tp={self.tp} sp={self.sp} pp={self.pp} dp={self.dp}"


def load_run(path: str, overrides: list[str]) -> Run:
    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    ini.read(path)
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not ini.has_section(section):
            ini.add_section(section)
        ini.set(section, name, value)
    get = lambda key, default: ini.get(*key.split("."), fallback=default)
    return Run(vocab=int(get("model.vocab_size", 0)), d=int(get("model.d_model", 0)),
               heads=int(get("model.num_heads", 0)), layers=int(get("model.num_layers", 0)),
               ffn_mult=int(get("model.ffn_mult", 4)), seq_len=int(get("train.seq_len", 0)),
               batch=int(get("train.batch_size", 1)), micro_batch=int(get("train.micro_batch", 0)),
               recompute=get("train.recompute", "false").lower() in ("1", "true", "yes", "on"))


def estimate(run: Run, layout: Layout) -> dict[str, float]:
    """Bytes on the busiest rank (the first pipeline stage), by kind."""
    d, tp = run.d, layout.tp
    inner, ffn = d // tp, run.ffn_mult * d // tp
    layers = run.layers // layout.pp
    per_layer = 2 * d + (5 * d * d + d * d + 2 * run.ffn_mult * d * d) // tp  # norms whole
    params = run.vocab * d // tp + layers * per_layer + (d if layout.pp == 1 else 0)
    state = params * (2 + 4 + 4) + params * 8 / layout.dp  # values, master, grads; moments
    if layout.dp > 1:
        state += params * 4 / layout.dp  # the reduce-scattered gradient shard

    local_batch = run.batch // layout.dp
    micro = run.micro_batch or local_batch
    micro_batches = local_batch // micro
    in_flight = min(layout.pp, micro_batches)
    rows = micro * run.seq_len // layout.sp  # N of one micro-batch on this rank
    heads = run.heads // tp
    activations_per_layer = rows * ((3 * d + 10 * inner + 2 * ffn) * 2 + inner * 4 + 2 * 4) + \
        micro * heads * (run.seq_len // layout.sp) * 4  # bf16 tensors, f32 gate, rstd, lse
    residual = (layers + 1) * rows * d * 2  # every layer's input (and the last output)
    if run.recompute:
        saved = in_flight * residual + activations_per_layer
    else:
        saved = in_flight * (residual + layers * activations_per_layer)
    scratch = rows * (10 * inner + 11 * inner + 2 * d + 2 * ffn) * 2  # BlockScratch
    attention = rows * inner * 4  # the backward's f32 dq accumulator
    logits = 2 * min(LOGITS_BUDGET, rows * (run.vocab // tp) * 4)  # block and its gradient
    return {"state": state, "activations": saved, "scratch": scratch + attention + logits,
            "params": params}


def total_gib(parts: dict[str, float]) -> float:
    return (parts["state"] + parts["activations"] + parts["scratch"]) / GIB


def print_table(run: Run, layouts: list[Layout], gpu_gib: float, reserve: float) -> None:
    print(f"T = {run.seq_len}, batch {run.batch}, micro-batch {run.micro_batch or 'whole'}, "
          f"recompute {'on' if run.recompute else 'off'}; GiB on the busiest rank "
          f"(fits: <= {gpu_gib:g} - {reserve:g} reserve)")
    print(f"{'layout':<26}{'params/rank':>14}{'state':>9}{'activ.':>9}{'scratch':>9}"
          f"{'total':>9}  fits")
    for layout in layouts:
        p = estimate(run, layout)
        total = total_gib(p)
        print(f"{str(layout):<26}{p['params'] / 1e9:>13.2f}B{p['state'] / GIB:>9.1f}"
              f"{p['activations'] / GIB:>9.1f}{p['scratch'] / GIB:>9.1f}{total:>9.1f}  "
              f"{'yes' if total <= gpu_gib - reserve else 'NO'}")


def longest(run: Run, layout: Layout, gpu_gib: float, reserve: float) -> int:
    best, t = 0, 1024
    while t <= MAX_T:
        trial = Run(**{**run.__dict__, "seq_len": t})
        if t % (2 * layout.sp) == 0 and total_gib(estimate(trial, layout)) <= gpu_gib - reserve:
            best = t
        t *= 2
    return best


# Peak memory `ratrain bench` measured (benchmarks/RESULTS.md): config overrides, layout,
# GiB, where. 1.5B, micro-batch 1, bf16 on one rank per GPU.
MEASURED = [
    (["train.seq_len=4096", "train.batch_size=1", "train.recompute=false"], "", 34.68,
     "2026-12-07 H200, 1 GPU"),
    (["train.seq_len=4096", "train.batch_size=2", "train.recompute=false"], "", 34.7,
     "2026-11-23 H200, 1 GPU"),
    (["train.seq_len=4096", "train.batch_size=4", "train.recompute=false"], "dp=2", 31.9,
     "2026-11-23 2xH200, weak dp2"),
    (["train.seq_len=4096", "train.batch_size=4", "train.recompute=false"], "tp=2", 18.3,
     "2026-11-23 2xH200, weak tp2"),
    (["train.seq_len=4096", "train.batch_size=4", "train.recompute=false"], "pp=2", 22.5,
     "2026-11-23 2xH200, weak pp2"),
    (["train.seq_len=4096", "train.batch_size=2", "train.recompute=false"], "sp=2", 29.9,
     "2026-11-23 2xH200, strong sp2"),
    (["train.seq_len=32768", "train.batch_size=1", "train.recompute=true"], "", 35.4,
     "2026-11-23 H100, longest T"),
    (["train.seq_len=65536", "train.batch_size=1", "train.recompute=true"], "", 45.8,
     "2026-11-23 H100, longest T"),
    (["train.seq_len=131072", "train.batch_size=1", "train.recompute=true"], "", 66.8,
     "2026-11-23 H100, longest T"),
]


def check(config: str) -> int:
    worst = 0.0
    for overrides, layout, measured, where in MEASURED:
        run = load_run(config, ["train.micro_batch=1", *overrides])
        got = total_gib(estimate(run, Layout.parse(layout)))
        error = got / measured - 1
        worst = max(worst, abs(error))
        print(f"{where:<30} T={run.seq_len:<7} B={run.batch} {layout or 'one GPU':<8} "
              f"recompute {'on ' if run.recompute else 'off'}  measured {measured:5.1f} GiB  "
              f"model {got:5.1f} GiB  {100 * error:+5.1f} %")
    print(f"largest deviation {100 * worst:.1f} % (allowed 5 %)")
    return 0 if worst <= 0.05 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default="configs/1.5b.ini")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides, as ratrain takes them (train.seq_len=8192)")
    parser.add_argument("--layouts", nargs="*", default=["tp=1"], metavar="LAYOUT")
    parser.add_argument("--longest", metavar="LAYOUT", help="longest T that fits this layout")
    parser.add_argument("--gpu-gib", type=float, default=79.1, help="H100 79.1, H200 139.8")
    parser.add_argument("--reserve-gib", type=float, default=3.0)
    parser.add_argument("--check", action="store_true", help="compare with measured peaks")
    args = parser.parse_args()
    if args.check:
        return check(args.config)
    run = load_run(args.config, args.set)
    if args.longest:
        layout = Layout.parse(args.longest)
        for recompute in (False, True):
            t = longest(Run(**{**run.__dict__, "recompute": recompute}), layout, args.gpu_gib,
                        args.reserve_gib)
            print(f"{layout}, recompute {'on ' if recompute else 'off'}: longest T "
                  f"{t if t else 'none'} (batch {run.batch}, within {args.gpu_gib:g} GiB)")
        return 0
    print_table(run, [Layout.parse(text) for text in args.layouts], args.gpu_gib, args.reserve_gib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
