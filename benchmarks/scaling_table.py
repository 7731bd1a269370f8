#!/usr/bin/env python3
"""The table of benchmarks/run_scaling.sh: one row per case of its scaling.jsonl.

Weak-scaling efficiency = model FLOP/s on N GPUs / (N x the one_gpu case's FLOP/s);
strong-scaling speed-up = one_gpu step time / the case's step time (same global shape).
MFU is per GPU, over the GEMM rate each bench measured in the same process.
"""
import argparse
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("jsonl")
    parser.add_argument("--gpus", type=int, default=2)
    args = parser.parse_args()
    records = [json.loads(line) for line in open(args.jsonl) if line.strip()]
    base = next((r for r in records if r.get("case") == "one_gpu" and not r.get("failed")), None)
    print(f"| case | GPUs | layout | shape | ms/iter | tokens/s | TFLOP/s | MFU/GPU | peak GiB | vs 1 GPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in records:
        if r.get("failed"):
            print(f"| {r['case']} | | | | failed (out of memory or error: see its log) | | | | | |")
            continue
        versus = ""
        if base and r["case"].startswith("weak_"):
            versus = f"efficiency {r['tflops'] / (r['gpus'] * base['tflops']):.2f}"
        elif base and r["case"].startswith("strong_"):
            versus = f"speed-up {base['ms'] / r['ms']:.2f}x"
        print(f"| {r['case']} | {r['gpus']} | {r['layout']} | {r['shape']} | {r['ms']:.1f} | "
              f"{r['tokens_per_s']:.0f} | {r['tflops']:.1f} | {100 * r['mfu']:.1f} % | "
              f"{r['peak_bytes'] / 2**30:.1f} | {versus} |")


if __name__ == "__main__":
    main()
