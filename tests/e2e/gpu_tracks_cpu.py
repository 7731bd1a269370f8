#!/usr/bin/env python3
"""End-to-end on one GPU (ctest label gpu): the GPU run's loss tracks the CPU's.

The same 200 iterations of joint training on the demo text run once on the CPU in f32
(the reference) and once on the GPU in bf16 with fp32 master weights. Both start from
the same weights (counter-based RNG keyed by name) and see the same batches, so their
curves must track:
  - the dense training loss, averaged over windows of 20 iterations, within 3 % of the
    CPU's in every window;
  - the final dense validation loss within 3 %.
Two heads of 64, so that the GPU run takes the fused recurrence + RoPE kernel (it needs
dh % 64 == 0, as the real sizes' dh = 128 has). bf16 rounds every activation to 8
mantissa bits (2^-9 relative), and training is chaotic, so the two runs drift apart
slowly; 3 % leaves room for that drift and still catches a wrong gradient, which shows up as a clearly slower descent.
Without a GPU, ratrain's error "no CUDA device is visible" makes ctest skip the test.
Usage: gpu_tracks_cpu.py RATRAIN CONFIG TEXT WORK
"""
import json
import pathlib
import shutil
import subprocess
import sys

WINDOW = 20
TOLERANCE = 0.03


def run(*args):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(map(str, args))}")


def losses(run_dir):
    """Dense training loss per iteration and dense validation losses of a run."""
    train, val = [], []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "train":
            train.append(record["loss_dense"])
        elif record["event"] == "val":
            val.append(record["val_loss_dense"])
    return train, val


def main():
    ratrain, config, text, work = sys.argv[1], sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
    shutil.rmtree(work, ignore_errors=True)
    common = [f"data.train={work}/data/train.h5", f"data.val={work}/data/val.h5",
              "model.d_model=128", "model.num_heads=2", "model.num_layers=2", "model.dilation=4",
              "train.seq_len=128", "train.batch_size=8", "train.iters=200", "eval.every=200",
              "eval.batches=8", "optim.lr=3e-3", "run.log_every=50"]
    run(ratrain, "tokenize", "--input", text, "--output", work / "data", "--val-fraction", "0.05")
    run(ratrain, "train", config, *common, "train.device=cuda", "train.dtype=bf16",
        f"run.dir={work}/gpu")
    run(ratrain, "train", config, *common, "train.device=cpu", "train.dtype=f32",
        f"run.dir={work}/cpu")

    cpu_train, cpu_val = losses(work / "cpu")
    gpu_train, gpu_val = losses(work / "gpu")
    assert len(cpu_train) == len(gpu_train) == 200, (len(cpu_train), len(gpu_train))
    failures = []
    print(f"{'iterations':>12} {'cpu f32':>9} {'gpu bf16':>9} {'gap':>8}")
    for start in range(0, 200, WINDOW):
        cpu = sum(cpu_train[start:start + WINDOW]) / WINDOW
        gpu = sum(gpu_train[start:start + WINDOW]) / WINDOW
        gap = abs(gpu - cpu) / cpu
        print(f"{start:>5}..{start + WINDOW - 1:<5} {cpu:9.4f} {gpu:9.4f} {gap:8.2%}")
        if gap > TOLERANCE:
            failures.append(f"iterations {start}..{start + WINDOW - 1}: gap {gap:.2%}")
    val_gap = abs(gpu_val[-1] - cpu_val[-1]) / cpu_val[-1]
    print(f"final validation loss: cpu {cpu_val[-1]:.4f}, gpu {gpu_val[-1]:.4f}, gap {val_gap:.2%}")
    if val_gap > TOLERANCE:
        failures.append(f"final validation loss gap {val_gap:.2%}")
    if failures:
        sys.exit("GPU loss does not track the CPU's: " + "; ".join(failures))
    print("PASS: the GPU bf16 run tracks the CPU f32 run")


if __name__ == "__main__":
    main()
