#!/usr/bin/env python3
"""Summarises the demo run (scripts/demo.sh): a results table and a loss-curve plot.

Reads RUN/pretrain/metrics.jsonl, RUN/adapt_d*/metrics.jsonl and RUN/eval/eval.jsonl;
writes RUN/results.md (also printed) and RUN/loss_curve.png.
Usage: demo_report.py RUN_DIR
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot(run, pretrain, adapts, out_path):
    fig, ax = plt.subplots(figsize=(8, 5))
    train = [r for r in pretrain if r["event"] == "train"]
    val = [r for r in pretrain if r["event"] == "val"]
    for mode, color in (("dense", "tab:blue"), ("sparse", "tab:orange")):
        key = "loss_" + mode
        if train and key in train[0]:
            ax.plot([r["iter"] + 1 for r in train], [r[key] for r in train], color=color,
                    alpha=0.35, lw=1, label="train, %s step" % mode)
        vkey = "val_loss_" + mode
        if val and vkey in val[0]:
            ax.plot([r["iter"] for r in val], [r[vkey] for r in val], "o-", color=color,
                    lw=2, label="validation, %s" % mode)
    last = train[-1]["iter"] + 1 if train else 0
    for (name, rows), color in zip(sorted(adapts.items()), ("tab:green", "tab:purple")):
        rows_t = [r for r in rows if r["event"] == "train"]
        if rows_t:
            ax.plot([last + r["iter"] + 1 for r in rows_t], [r["loss_sparse"] for r in rows_t],
                    lw=1.2, color=color,
                    label="adaptation to %s (train)" % name.replace("adapt_", "").upper())
    ax.set_xlabel("iteration (batches of 8 x 256 byte tokens)")
    ax.set_ylabel("cross-entropy (nats per byte)")
    ax.set_title("RAT+ demo: joint pretraining (sparse D=16 + dense), then adaptation")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)


def table(evals):
    lines = ["| model | evaluated at | validation loss |", "|---|---|---|"]
    for e in evals:
        model = os.path.basename(os.path.dirname(e["weights"]))
        for mode in ("dense", "sparse"):
            key = "val_loss_" + mode
            if key in e:
                at = "dense" if mode == "dense" else "D = %d" % e["dilation"]
                lines.append("| %s | %s | %.4f |" % (model, at, e[key]))
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    run = argv[1]
    pretrain = read_jsonl(os.path.join(run, "pretrain", "metrics.jsonl"))
    adapts = {os.path.basename(d): read_jsonl(os.path.join(d, "metrics.jsonl"))
              for d in glob.glob(os.path.join(run, "adapt_d*"))}
    evals = read_jsonl(os.path.join(run, "eval", "eval.jsonl"))

    val = [r for r in pretrain if r["event"] == "val"]
    report = ["# RAT+ demo results", ""]
    if len(val) >= 2:
        first, last = val[0], val[-1]
        report.append("Validation loss (dense) during pretraining: %.4f at iteration %d -> "
                      "%.4f at iteration %d." % (first["val_loss_dense"], first["iter"],
                                                 last["val_loss_dense"], last["iter"]))
        report.append("")
    report.append(table(evals))
    text = "\n".join(report) + "\n"
    with open(os.path.join(run, "results.md"), "w") as f:
        f.write(text)
    plot(run, pretrain, adapts, os.path.join(run, "loss_curve.png"))
    print(text)
    print("demo_report.py: wrote %s and %s" % (os.path.join(run, "results.md"),
                                                os.path.join(run, "loss_curve.png")))


if __name__ == "__main__":
    main(sys.argv)
