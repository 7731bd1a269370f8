#!/usr/bin/env python3
"""End-to-end test of `ratrain export` and tools/torch_interchange.py (issue #5 item 3;
ctest label e2e): ratrain weights <-> a PyTorch state dict with the RAT+ authors'
parameter names and the head tied to the embedding.

  0. torch (and h5py) for this interpreter, Debian's /usr/bin/python3: where missing, the
     test installs Debian's python3-torch (and python3-h5py) with apt-get (needs root;
     about a minute, once per machine). Debian's package, not pip: the machines this
     runs on reach Debian's archive but not PyPI or download.pytorch.org. An install that
     fails FAILS the test, never skips it.
  1. A tiny run (checkpoint_e2e.py's model), 6 iterations, checkpoint.every=6.
  2. ratrain export <run>/model.h5 --output a.pt; ratrain export <run> --output b.pt (a
     run folder: its checkpoints/latest, step_6, as the log line must say).
  3. torch.load: a.pt holds every params/<name> of model.h5 bitwise (float32) plus
     lm_head.weight; b.pt (read from the checkpoint's index.h5) equals a.pt bitwise, since
     the checkpoint of the last iteration and model.h5 are both written from the
     optimizer's master values; in both the head has the embedding's storage (data_ptr
     equal after torch.load); a.pt.json == b.pt.json == model.h5's config (the
     checkpoint's meta.json says vocab_size = 0, "from the data": the embedding's rows
     give it). --head-name '' leaves the head out.
  4. import a.pt c.h5 (and the same state dict under a 'model' key): c.h5 is bitwise
     model.h5's parameters, and `ratrain eval` with model.weights=c.h5 prints exactly the
     losses (dense and sparse) it prints for model.weights=<run>/model.h5.
     A golden fixture (float64, per-layer dilation/window/initial, an extra config key)
     exports in float64 and imports as float32 with its config intact.
  5. Refused, exit status 1, with a message naming the file and the key: a misshaped
     parameter, a missing one, an unexpected one, an untied head. `ratrain export` with
     an interpreter that lacks the modules exits 3 naming the module; with no interpreter
     at RATRAIN_PYTHON it exits 1 naming it.

Usage: torch_interchange_e2e.py RATRAIN TOOL TEXT FIXTURE.h5 WORK
"""
import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

MODEL = ["model.d_model=32", "model.num_heads=2", "model.num_layers=2", "model.dilation=4",
         "train.seq_len=32", "train.batch_size=4", "train.iters=6", "run.log_every=5",
         "checkpoint.every=6"]
HEAD, EMBEDDING = "lm_head.weight", "embedding.wte.weight"


def require(condition, message):
    if not condition:
        sys.exit("FAILED: " + message)


def run(args, expect_rc=0, env=None):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    sys.stdout.write(done.stdout + done.stderr)
    require(done.returncode == expect_rc, f"exit status {done.returncode}, expected "
            f"{expect_rc}: {' '.join(map(str, args))}")
    return done.stdout + done.stderr


def ensure_modules():
    """torch and h5py importable here, from Debian's packages if need be."""
    missing = []
    for module, package in (("h5py", "python3-h5py"), ("torch", "python3-torch")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if not missing:
        return
    require(sys.executable.startswith("/usr/bin/"), f"{sys.executable} lacks "
            f"{' '.join(missing)}: Debian's packages serve /usr/bin/python3 only")
    require(os.geteuid() == 0, f"this test needs {' '.join(missing)} and installs them with "
            "apt-get as root; run it as root (CI does) or install them")
    require(shutil.which("apt-get") is not None, f"no apt-get to install {' '.join(missing)}")
    print(f"installing {' '.join(missing)} from Debian (about a minute)", flush=True)
    start = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for args in (["apt-get", *lock, "update", "-qq"],
                 ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *missing]):
        try:
            done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=420)
        except subprocess.TimeoutExpired:
            require(False, f"timed out after 420 s: {' '.join(args)}")
        require(done.returncode == 0, f"installing {' '.join(missing)} failed (no network to "
                f"Debian's archive?): {' '.join(args)} exited with status {done.returncode}\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    importlib.invalidate_caches()
    print(f"installed {' '.join(missing)} in {time.monotonic() - start:.0f} s")


def main():
    ratrain, tool, text, fixture, work = sys.argv[1:6]
    work = pathlib.Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ensure_modules()
    import h5py
    import numpy as np
    import torch
    print(f"python {sys.executable}, torch {torch.__version__}, h5py {h5py.__version__}")
    python_env = {"RATRAIN_PYTHON": sys.executable}
    start = time.monotonic()

    def tool_run(*args, expect_rc=0):
        return run([sys.executable, tool, *args], expect_rc)

    # 1. A tiny run whose last checkpoint is at its last iteration.
    run([ratrain, "tokenize", "--input", text, "--output", work / "data"])
    run_dir = work / "run"
    run([ratrain, "train", f"data.train={work}/data/train.h5", *MODEL, f"run.dir={run_dir}"])
    model_h5 = run_dir / "model.h5"

    # 2. Export the model file and the run folder (= its latest checkpoint).
    a_pt, b_pt = work / "a.pt", work / "b.pt"
    run([ratrain, "export", model_h5, "--output", a_pt], env=python_env)
    log = run([ratrain, "export", run_dir, "--output", b_pt], env=python_env)
    require("latest checkpoint" in log and "step_6" in log,
            "exporting the run folder says it reads checkpoints/step_6")

    # 3. What was written.
    with h5py.File(model_h5, "r") as f:
        want = {name: f["params"][name][()] for name in f["params"]}
        want_config = json.loads(f.attrs["config"])
    a = torch.load(a_pt, weights_only=True)
    b = torch.load(b_pt, weights_only=True)
    require(sorted(a) == sorted([*want, HEAD]), f"a.pt has the keys of model.h5 and {HEAD} "
            f"(got {sorted(a)})")
    require(sorted(b) == sorted(a), "b.pt has the keys of a.pt")
    for name, value in want.items():
        got = a[name].numpy()
        require(a[name].dtype == torch.float32 and got.shape == value.shape and
                np.array_equal(got.view(np.uint32), value.view(np.uint32)),
                f"a.pt['{name}'] is bitwise params/{name} of model.h5")
        require(torch.equal(b[name].view(torch.int32), a[name].view(torch.int32)),
                f"b.pt['{name}'] (checkpoint step_6) is bitwise a.pt's (model.h5)")
    for label, state in (("a.pt", a), ("b.pt", b)):
        require(state[HEAD].data_ptr() == state[EMBEDDING].data_ptr(),
                f"{label}: {HEAD} shares the storage of {EMBEDDING} (tied)")
    configs = [json.loads(pathlib.Path(f"{p}.json").read_text()) for p in (a_pt, b_pt)]
    require(configs[0] == want_config and configs[1] == want_config,
            f"a.pt.json and b.pt.json hold model.h5's config {want_config} (got {configs})")
    print(f"a.pt: {len(want)} parameters bitwise model.h5, {HEAD} tied; b.pt (checkpoint) "
          "bitwise a.pt; configs equal")
    untied = work / "no_head.pt"
    run([ratrain, "export", model_h5, "--output", untied, "--head-name", ""], env=python_env)
    require(sorted(torch.load(untied, weights_only=True)) == sorted(want),
            "--head-name '' writes no head key")

    # 4. Back to a model file, and the same losses from it.
    c_h5 = work / "c.h5"
    tool_run("import", a_pt, c_h5)
    wrapped = work / "wrapped.pt"
    torch.save({"model": a, "iteration": 6}, wrapped)
    tool_run("import", wrapped, work / "c_wrapped.h5", "--config", f"{a_pt}.json")
    for path in (c_h5, work / "c_wrapped.h5"):
        with h5py.File(path, "r") as f:
            require(sorted(f["params"]) == sorted(want), f"{path.name} has model.h5's names")
            for name, value in want.items():
                got = f["params"][name][()]
                require(got.dtype == np.float32 and
                        np.array_equal(got.view(np.uint32), value.view(np.uint32)),
                        f"{path.name} params/{name} is bitwise model.h5's")
    losses = {}
    for label, weights in (("model.h5", model_h5), ("c.h5", c_h5)):
        out = run([ratrain, "eval", run_dir / "config.ini", f"model.weights={weights}",
                   f"data.val={work}/data/val.h5", "eval.batches=2",
                   f"run.dir={work}/eval_{label}"])
        record = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        losses[label] = {k: v for k, v in record.items() if k.startswith("val_loss_")}
    require(len(losses["model.h5"]) == 2 and losses["c.h5"] == losses["model.h5"],
            f"eval of c.h5 gives model.h5's losses exactly: {losses}")
    print(f"imported c.h5: bitwise model.h5; eval losses equal {losses['c.h5']}")

    # The authors' fixture: float64 out, float32 back in, the config as it was.
    fixture_pt, fixture_h5 = work / "fixture.pt", work / "fixture.h5"
    tool_run("export", fixture, fixture_pt)
    tool_run("import", fixture_pt, fixture_h5)
    exported = torch.load(fixture_pt, weights_only=True)
    with h5py.File(fixture, "r") as ref, h5py.File(fixture_h5, "r") as back:
        config = json.loads(ref.attrs["config"])
        require(json.loads(back.attrs["config"]) == config, f"{fixture_h5.name} keeps the "
                f"fixture's config {config}")
        for name in ref["params"]:
            value = ref["params"][name][()]
            require(exported[name].dtype == torch.float64 and
                    np.array_equal(exported[name].numpy(), value),
                    f"fixture.pt['{name}'] is the fixture's float64 tensor")
            require(np.array_equal(back["params"][name][()], value.astype(np.float32)),
                    f"{fixture_h5.name} params/{name} is the fixture's, rounded to float32")
    require(exported[HEAD].data_ptr() == exported[EMBEDDING].data_ptr(), "fixture.pt: tied")
    print(f"fixture {pathlib.Path(fixture).name}: float64 exported, float32 imported, config "
          "kept")

    # 5. Refused state dicts: exit status 1, the message names the file and the key.
    def refused(label, state, *expect):
        path = work / f"{label}.pt"
        torch.save(state, path)
        shutil.copy(f"{a_pt}.json", f"{path}.json")
        out = tool_run("import", path, work / f"{label}.h5", expect_rc=1)
        for text_expected in (str(path), *expect):
            require(text_expected in out, f"{label}: the error names '{text_expected}'")
        require(not (work / f"{label}.h5").exists(), f"{label}: no model file written")
        print(f"{label}: refused, naming {', '.join(expect)}")

    fc1 = "backbone.layers.1.hidden_layer.fc1.weight"
    refused("wrong_shape", {**a, fc1: torch.zeros(100, 32)}, fc1, "[100, 32]", "[128, 32]")
    refused("missing_key", {k: v for k, v in a.items() if k != "backbone.ln.weight"},
            "missing", "backbone.ln.weight")
    extra = "backbone.layers.2.seq_layer.in_proj.weight"
    refused("extra_key", {**a, extra: torch.zeros(160, 32)}, "unexpected", extra)
    refused("untied_head", {**a, HEAD: a[EMBEDDING] + 1}, HEAD, EMBEDDING)

    # `ratrain export` without the modules (python3 -S: no site packages) or interpreter.
    no_site = work / "python_no_site"
    no_site.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    no_site.chmod(0o755)
    out = run([ratrain, "export", model_h5, "--output", work / "x.pt"], expect_rc=3,
              env={"RATRAIN_PYTHON": str(no_site)})
    require("cannot import numpy" in out and "RATRAIN_PYTHON" in out,
            "export without numpy names the module and RATRAIN_PYTHON")
    out = run([ratrain, "export", model_h5, "--output", work / "x.pt"], expect_rc=1,
              env={"RATRAIN_PYTHON": str(work / "no_such_python")})
    require("no_such_python" in out, "export with a missing interpreter names it")
    print(f"passed in {time.monotonic() - start:.1f} s (after the module check)")


if __name__ == "__main__":
    main()
