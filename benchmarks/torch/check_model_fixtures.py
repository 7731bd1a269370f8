"""Checks the PyTorch baseline model (ratplus_model.py) against the golden fixtures.

A baseline is only worth timing if it computes the model: each fixture of
shared/fixtures/ratplus (RATPLUS.md "Fixture files": dense, dilated with and without
window and prefix, local-only, hybrid per-layer rules) is loaded by parameter name, the
loss and every parameter gradient are recomputed in fp32 on the GPU (eager: the same
modules, attention and scan code as the benchmark, without compilation or autocast),
and compared with the float64 values of the file. The fixtures were cross-checked
against the authors' modules at ~1e-6 in fp32; tolerances here: loss 1e-5 relative,
gradients 1e-4 relative per parameter (fp32 sums over T = 64 and d = 64 terms, ~1e-6
expected). Needs h5py; without it, prints one record saying so and exits 0.

  python3 benchmarks/torch/check_model_fixtures.py [fixture dir] > checks.jsonl
"""
from __future__ import annotations

import json
import os
import sys

import torch

from bench_common import device_record, emit, log, relative_error
from ratplus_model import RatPlusConfig, RatPlusLM

LOSS_TOLERANCE = 1e-5
GRAD_TOLERANCE = 1e-4
DEFAULT_DIRS = ("shared/fixtures/ratplus", "../shared/fixtures/ratplus")


def check_fixture(h5py, path: str) -> dict:
    with h5py.File(path, "r") as f:
        spec = json.loads(f.attrs["config"])
        mode = f.attrs["mode"]
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        ids = torch.from_numpy(f["input_ids"][()]).long().cuda()      # (B, T)
        labels = torch.from_numpy(f["labels"][()]).long().cuda()      # (B, T), -100 ignored
        params = {name: torch.from_numpy(f["params"][name][()]) for name in f["params"]}
        grads = {name: torch.from_numpy(f["grads"][name][()]) for name in f["grads"]}
        loss_ref = float(f["loss"][()])
    layers = spec["num_layers"]
    config = RatPlusConfig(
        vocab_size=spec["vocab_size"], d_model=spec["d_model"], num_heads=spec["num_heads"],
        num_layers=layers, ffn_mult=spec["ffn_mult"], rope_base=spec["rope_base"],
        sparse_rules=RatPlusConfig.expand_rules(layers, spec["dilation"], spec["window"],
                                                spec["initial"]))
    model = RatPlusLM(config, compile_blocks=False).cuda()
    named = dict(model.named_parameters())
    if set(named) != set(params):
        raise ValueError(f"parameter names differ: model only {sorted(set(named) - set(params))}, "
                         f"fixture only {sorted(set(params) - set(named))}")
    with torch.no_grad():
        for name, value in params.items():
            named[name].copy_(value)
    loss = model(ids, labels, mode)
    loss.backward()
    grad_errors = {name: relative_error(named[name].grad, grads[name].cuda()) for name in grads}
    worst = max(grad_errors, key=grad_errors.get)
    loss_error = abs(float(loss) - loss_ref) / abs(loss_ref)
    return {"mode": mode, "loss_rel_err": loss_error, "grad_rel_err_max": grad_errors[worst],
            "worst_param": worst,
            "check_ok": bool(loss_error < LOSS_TOLERANCE and grad_errors[worst] < GRAD_TOLERANCE)}


def main() -> None:
    # As for the C++ tests: an explicit argument, else $RATRAIN_FIXTURES_DIR, else the
    # shared fixtures beside the checkout.
    candidates = [os.environ["RATRAIN_FIXTURES_DIR"]] if os.environ.get("RATRAIN_FIXTURES_DIR") else []
    candidates += DEFAULT_DIRS
    directory = sys.argv[1] if len(sys.argv) > 1 else next(
        (d for d in candidates if os.path.isdir(d)), candidates[0])
    base = {"part": "d", "side": "check", "impl": "ratplus_model.py"}
    try:
        import h5py
    except ImportError:
        emit({**base, "case": "fixtures", "error": "h5py not installed: model not checked"})
        return
    if not os.path.isdir(directory):
        emit({**base, "case": "fixtures", "error": f"no fixture directory {directory}"})
        return
    torch.backends.cuda.matmul.allow_tf32 = False  # the fixtures are fp64: compare in true fp32
    torch.backends.cudnn.allow_tf32 = False
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith(".h5") or name == "joint_train.h5":  # joint_train: optimizer, not model
            continue
        record = {**base, "case": f"fixture {name}"}
        try:
            record.update(check_fixture(h5py, path))
        except Exception as error:
            record["error"] = repr(error)[:400]
        emit({**record, **device_record()})
        log(f"{name}: {record}")


if __name__ == "__main__":
    main()
