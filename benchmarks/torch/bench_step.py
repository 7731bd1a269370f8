"""Part d of the GPU benchmarks, PyTorch side: training steps of the 1.5B RAT+ model.

The model is ratplus_model.py built from --config (configs/1.5b.ini: 24 layers, d = 2048,
16 heads, vocab 32000, sparse rule D = 64, W = 0, P = 0), micro-batch --batch of
T = --seq-len random tokens, trained the authors' way (RATPLUS.md "Training
schedule"): fp32 master weights, bf16 autocast, global-norm clipping to 1.0, fused
AdamW (betas 0.9, 0.95, eps 1e-8, weight decay 0.1) after every forward/backward.
  dense step: forward + backward in dense mode, clip, AdamW step.
  joint step: the same in sparse mode, then in dense mode on the same batch (two
              optimizer steps per batch, as in joint pretraining).
Records (JSON lines): "step dense T=.. B=.." and "step joint T=.. B=..", with ms (median
over --iters after --warmup steps that include compilation), tokens_per_s (the batch
counted once, also for the joint step), flops, tflops and mfu:
  model FLOPs = tokens x (6 x (14 d^2 L + V d) + 12 d L x mean visible keys per query)
  (ratplus_model.training_flops_per_token, the count of ratrain's model/flops.hpp),
  summed over the sparse and the dense pass for the joint step;
  MFU = model FLOPs / step time / peak, where peak is a bf16 torch.matmul of 8192^3
  timed in the same run (also emitted, as a "reference" record).
Activation checkpointing per layer: --checkpoint auto (the default) turns it on only if
a step runs out of memory without it.

  python3 benchmarks/torch/bench_step.py --config configs/1.5b.ini > step.jsonl
"""
from __future__ import annotations

import argparse

import torch

from bench_common import device_record, emit, log, median_ms, raise_recompile_limit
from ratplus_model import RatPlusConfig, RatPlusLM, training_flops_per_token

PEAK_MATMUL_SIZE = 8192


def measure_matmul_peak(warmup: int, iters: int) -> float:
    """TFLOP/s of a bf16 (8192 x 8192) @ (8192 x 8192) matmul: 2 n^3 FLOPs."""
    n = PEAK_MATMUL_SIZE
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = median_ms(lambda: a @ b, warmup, iters)
    tflops = 2.0 * n ** 3 / ms / 1e9
    emit({"part": "d", "case": f"bf16 matmul {n}^3", "side": "reference", "impl": "torch.matmul",
          "ms": ms, "tflops": tflops, **device_record()})
    log(f"bf16 matmul {n}^3: {ms:.3f} ms = {tflops:.0f} TFLOP/s")
    return tflops


def select_sdpa_backend(name: str) -> None:
    """Restricts dense-mode SDPA to one backend (global flags, read when the compiled
    block is traced); "auto" keeps PyTorch's own choice."""
    if name == "auto":
        return
    torch.backends.cuda.enable_flash_sdp(name == "flash")
    torch.backends.cuda.enable_mem_efficient_sdp(name == "efficient")
    torch.backends.cuda.enable_cudnn_sdp(name == "cudnn")
    torch.backends.cuda.enable_math_sdp(False)


class Trainer:
    """One model, its optimizer and a fixed random batch."""

    def __init__(self, config: RatPlusConfig, args):
        with torch.device("cuda"):  # 1.5B parameters: create and initialise them on the GPU
            self.model = RatPlusLM(config, scan=args.scan, compile_blocks=not args.no_compile,
                                   activation_checkpointing=args.checkpoint == "on")
            self.model.init_weights()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                           eps=1e-8, weight_decay=0.1, fused=True)
        tokens = torch.randint(0, config.vocab_size, (args.batch, args.seq_len + 1), device="cuda")
        self.ids = tokens[:, :-1].contiguous()     # (B, T)
        self.labels = tokens[:, 1:].contiguous()   # (B, T)
        self.last_loss = None

    def step(self, mode: str) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = self.model(self.ids, self.labels, mode)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0, foreach=True)
        self.optimizer.step()
        self.last_loss = loss.detach()

    def joint_step(self) -> None:
        self.step("sparse")
        self.step("dense")


def run_schedule(trainer: Trainer, name: str, config: RatPlusConfig, peak: float, args) -> None:
    step = trainer.joint_step if name == "joint" else lambda: trainer.step("dense")
    tokens = args.batch * args.seq_len
    modes = ["sparse", "dense"] if name == "joint" else ["dense"]
    flops = tokens * sum(training_flops_per_token(config, args.seq_len, m) for m in modes)
    record = {"part": "d", "case": f"step {name} T={args.seq_len} B={args.batch}",
              "side": "baseline", "impl": f"torch_compile_blocks_{args.scan}", "B": args.batch,
              "T": args.seq_len, "params": config.num_parameters(), "sdpa": args.sdpa}
    for attempt in range(2):
        try:
            torch.cuda.reset_peak_memory_stats()
            ms = median_ms(step, args.warmup, args.iters)
            break
        except torch.OutOfMemoryError as error:
            torch.cuda.empty_cache()
            if attempt == 1 or args.checkpoint != "auto" or trainer.model.activation_checkpointing:
                log(f"{record['case']}: out of memory even with checkpointing: {error!r}")
                emit({**record, "error": repr(error)[:400], **device_record()})
                return
            log(f"{record['case']}: out of memory; retrying with per-layer activation checkpointing")
            trainer.model.activation_checkpointing = True
        except Exception as error:  # a compile or kernel failure: report it, keep going
            log(f"{record['case']}: FAILED: {error!r}")
            emit({**record, "error": repr(error)[:400], **device_record()})
            return
    tflops = flops / ms / 1e9
    record.update({"ms": ms, "tokens": tokens, "tokens_per_s": tokens / ms * 1e3, "flops": flops,
                   "tflops": tflops, "mfu": tflops / peak, "peak_tflops": peak,
                   "checkpointing": trainer.model.activation_checkpointing,
                   "loss": float(trainer.last_loss),
                   "memory_gb": torch.cuda.max_memory_allocated() / 2 ** 30, **device_record()})
    emit(record)
    log(f"{record['case']}: {ms:.1f} ms, {record['tokens_per_s']:.0f} tokens/s, MFU "
        f"{100 * record['mfu']:.1f}% (loss {record['loss']:.3f}, "
        f"{record['memory_gb']:.1f} GiB peak)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/1.5b.ini")
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=1, help="micro-batch (1.5b.ini: 1)")
    parser.add_argument("--schedules", default="dense,joint")
    parser.add_argument("--scan", default="manual_bwd", choices=["manual_bwd", "autograd"])
    parser.add_argument("--sdpa", default="auto", choices=["auto", "flash", "cudnn", "efficient"])
    parser.add_argument("--checkpoint", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--no-compile", action="store_true", help="eager blocks (debugging)")
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    raise_recompile_limit()
    select_sdpa_backend(args.sdpa)
    peak = measure_matmul_peak(warmup=5, iters=20)
    config = RatPlusConfig.from_ini(args.config)
    log(f"model: {config.num_parameters() / 1e9:.3f}B parameters, rules {config.sparse_rules[0]}")
    trainer = Trainer(config, args)
    for name in args.schedules.split(","):
        run_schedule(trainer, name, config, peak, args)


if __name__ == "__main__":
    main()
