#!/usr/bin/env python3
"""ratrain <-> PyTorch weights: the authors' state dicts (issue #5 item 3).

ratrain's weight files and the RAT+ authors' PyTorch checkpoints use the same parameter
names (../shared/docs/RATPLUS.md, "Fixture files"): embedding.wte.weight,
backbone.ln.weight and per layer l

    backbone.layers.<l>.seq_layer.input_norm.weight   (d,)
    backbone.layers.<l>.seq_layer.in_proj.weight      (5d, d)   rows: the five projections
    backbone.layers.<l>.seq_layer.out_proj.weight     (d, d)
    backbone.layers.<l>.hidden_layer.ln.weight        (d,)
    backbone.layers.<l>.hidden_layer.fc1.weight       (ffn_mult*d, d)
    backbone.layers.<l>.hidden_layer.fc2.weight       (d, ffn_mult*d)

with embedding.wte.weight (vocab_size, d). The output head is tied to the embedding:
ratrain stores it once, a PyTorch state dict holds it under a second key (default
lm_head.weight) that shares the embedding's storage.

Usage:
  torch_interchange.py export SRC OUT.pt [--head-name lm_head.weight]
      SRC: a model.h5 (datasets params/<name> + a `config` JSON attribute) or a checkpoint
      folder (step_N: index.h5, whose params/<name> are the global tensors, and meta.json).
      Writes torch.save({name: tensor}) with the stored dtype (float32 from ratrain), the
      head key the SAME tensor as embedding.wte.weight (--head-name '' leaves it out), and
      OUT.pt.json: the model config, in the form of model.h5's `config` attribute.
  torch_interchange.py import IN.pt OUT.h5 [--config CONFIG.json] [--head-name lm_head.weight]
      IN.pt: a state dict, plain or under a 'model' or 'state_dict' key. The head, when
      present, must equal the embedding (tied) and is dropped. Every name and shape is
      checked against the config (default IN.pt.json); OUT.h5 is a model file in float32
      that `ratrain eval` and train's model.weights read.

Exit status: 0 done, 1 bad input (the message names the file and the key), 2 usage,
3 a module missing (the message names it: numpy, h5py or torch). `ratrain export` runs
the export through this script.
"""
import argparse
import importlib
import json
import os
import sys

PROG = "torch_interchange.py"
DEFAULT_HEAD = "lm_head.weight"
EMBEDDING = "embedding.wte.weight"
# The keys of model.h5's `config` attribute (io/model_file.cpp: model_config_to_json).
CONFIG_KEYS = ("vocab_size", "d_model", "num_heads", "num_layers", "ffn_mult", "rope_base",
               "dilation", "window", "initial")
EXIT_BAD_INPUT, EXIT_MISSING_MODULE = 1, 3


class BadInput(Exception):
    """An error in the user's files; main() prints it and exits with status 1."""


def import_modules():
    """numpy, h5py, torch, or exit 3 naming the one that is missing."""
    modules = []
    for name in ("numpy", "h5py", "torch"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as e:
            print(f"{PROG}: cannot import {name} ({e}) with {sys.executable}: install it "
                  f"(pip install {name}; Debian: apt-get install python3-{name}), or set RATRAIN_PYTHON to a python3 that has numpy, "
                  "h5py and torch", file=sys.stderr)
            sys.exit(EXIT_MISSING_MODULE)
    return modules


# --- the model config and the parameters it implies ---------------------------------
def collapse(value):
    """A per-layer list with one distinct value -> that value (as model_config_to_json)."""
    if isinstance(value, list) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def normalize_config(config, source, vocab_rows=None):
    """The fixture form of a model config: from model.h5's attribute, from the `model`
    section of meta.json (or a whole meta.json / ratrain config with one), whose
    vocab_size may be 0 (= from the data): then the embedding's rows give it."""
    if not isinstance(config, dict):
        raise BadInput(f"{source}: the model config is not a JSON object")
    if "model" in config and isinstance(config["model"], dict):
        config = config["model"]
    elif "config" in config and isinstance(config["config"], dict):  # a whole meta.json
        config = config["config"].get("model", config["config"])
    out = dict(config)
    out.pop("weights", None)  # the ratrain key model.weights is no architecture
    for key in ("vocab_size", "d_model", "num_heads", "num_layers"):
        if not isinstance(out.get(key), int) or isinstance(out.get(key), bool):
            raise BadInput(f"{source}: model config key '{key}' is missing or not an integer")
    out.setdefault("ffn_mult", 4)
    out.setdefault("rope_base", 10000.0)
    for key in ("dilation", "window", "initial"):
        if key not in out:
            raise BadInput(f"{source}: model config has no key '{key}'")
        out[key] = collapse(out[key])
    if out["vocab_size"] == 0:
        if vocab_rows is None:
            raise BadInput(f"{source}: model config vocab_size is 0 and there is no "
                           f"{EMBEDDING} to take it from")
        out["vocab_size"] = int(vocab_rows)
    return out


def expected_shapes(config):
    """{name: shape} of every parameter of the model `config` describes."""
    v, d, layers = config["vocab_size"], config["d_model"], config["num_layers"]
    f = config["ffn_mult"] * d
    shapes = {EMBEDDING: (v, d), "backbone.ln.weight": (d,)}
    for layer in range(layers):
        p = f"backbone.layers.{layer}."
        shapes.update({
            p + "seq_layer.input_norm.weight": (d,),
            p + "seq_layer.in_proj.weight": (5 * d, d),
            p + "seq_layer.out_proj.weight": (d, d),
            p + "hidden_layer.ln.weight": (d,),
            p + "hidden_layer.fc1.weight": (f, d),
            p + "hidden_layer.fc2.weight": (d, f),
        })
    return shapes


def check_parameters(shapes_found, config, source, where):
    """Missing, extra or misshaped parameters of `shapes_found` ({name: shape}) against
    what `config` implies: one error naming `source` and every offending key."""
    want = expected_shapes(config)
    problems = []
    missing = sorted(set(want) - set(shapes_found))
    extra = sorted(set(shapes_found) - set(want))
    if missing:
        problems.append("missing " + ", ".join(f"'{where}{n}' {list(want[n])}" for n in missing))
    if extra:
        problems.append("unexpected " + ", ".join(f"'{where}{n}'" for n in extra))
    for name in sorted(set(want) & set(shapes_found)):
        if tuple(shapes_found[name]) != want[name]:
            problems.append(f"'{where}{name}' has shape {list(shapes_found[name])} but the "
                            f"config implies {list(want[name])}")
    if problems:
        summary = (f"vocab_size={config['vocab_size']}, d_model={config['d_model']}, "
                   f"num_layers={config['num_layers']}, ffn_mult={config['ffn_mult']}")
        raise BadInput(f"{source}: " + "; ".join(problems) + f" (config: {summary})")


# --- export ---------------------------------------------------------------------------
def read_source(src, h5py):
    """(config, {name: numpy array}) of a model.h5 or a checkpoint folder."""
    if os.path.isdir(src):
        index, meta_path = os.path.join(src, "index.h5"), os.path.join(src, "meta.json")
        for path in (index, meta_path):
            if not os.path.isfile(path):
                raise BadInput(f"{src}: no {os.path.basename(path)}: not a checkpoint folder "
                               "(step_N); `ratrain export` also takes a run folder")
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise BadInput(f"{meta_path}: cannot read it as JSON ({e})") from None
        raw_config = meta.get("config", {}).get("model")
        if raw_config is None:
            raise BadInput(f"{meta_path}: no config.model section")
        path, source = index, index
    else:
        if not os.path.isfile(src):
            raise BadInput(f"{src}: no such file or folder")
        path, source, raw_config = src, src, None
    try:
        file = h5py.File(path, "r")
    except OSError as e:
        raise BadInput(f"{path}: cannot open it as HDF5 ({e})") from None
    with file:
        if "params" not in file:
            raise BadInput(f"{path}: no group 'params': not a ratrain/RAT+ model file")
        if raw_config is None:
            if "config" not in file.attrs:
                raise BadInput(f"{path}: no 'config' attribute: not a ratrain/RAT+ model file")
            text = file.attrs["config"]
            text = text.decode() if isinstance(text, bytes) else str(text)
            try:
                raw_config = json.loads(text)
            except ValueError as e:
                raise BadInput(f"{path}: the 'config' attribute is not valid JSON ({e})") from None
        # Whole tensors: in index.h5 virtual datasets assembled from the shards.
        params = {name: file["params"][name][()] for name in file["params"]}
    rows = params[EMBEDDING].shape[0] if EMBEDDING in params else None
    config = normalize_config(raw_config, source, rows)
    check_parameters({n: a.shape for n, a in params.items()}, config, source, "params/")
    return config, params


def export(args, np, h5py, torch):
    config, params = read_source(args.src, h5py)
    if args.head_name and args.head_name in params:
        raise BadInput(f"{args.src}: holds a parameter named '{args.head_name}', the "
                       "--head-name of the tied head")
    state = {name: torch.from_numpy(np.ascontiguousarray(params[name])) for name in sorted(params)}
    if args.head_name:
        # The same tensor object: torch.save writes one storage for both keys, as it does
        # for a model whose head weight is the embedding's.
        state[args.head_name] = state[EMBEDDING]
    try:
        torch.save(state, args.out)
        with open(args.out + ".json", "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
    except (OSError, RuntimeError) as e:  # torch.save reports a missing folder as RuntimeError
        raise BadInput(f"{args.out}: cannot write it ({e})") from None
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in state.values()})
    print(f"{PROG}: {len(params)} parameters ({', '.join(dtypes)}) of {args.src} -> {args.out}"
          + (f" (head '{args.head_name}' tied to {EMBEDDING})" if args.head_name else "")
          + f"; config -> {args.out}.json")


# --- import ---------------------------------------------------------------------------
def load_state_dict(path, torch):
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except Exception as e:  # pickle, zip or weights_only errors: all name the file
        raise BadInput(f"{path}: cannot load it with torch.load ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, dict):
        raise BadInput(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    if not all(torch.is_tensor(v) for v in loaded.values()):
        for key in ("model", "state_dict"):
            if isinstance(loaded.get(key), dict):
                return loaded[key], f"['{key}']"
        raise BadInput(f"{path}: not a state dict of tensors, and no 'model' or 'state_dict' "
                       f"key holds one (keys: {', '.join(map(str, list(loaded)[:8]))})")
    return loaded, ""


def import_(args, np, h5py, torch):
    state, where = load_state_dict(args.pt, torch)
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise BadInput(f"{args.pt}: key{where} '{bad[0]}' is a {type(state[bad[0]]).__name__}, "
                       "not a tensor")
    state = dict(state)
    tied = bool(args.head_name) and args.head_name in state
    if tied:
        head = state.pop(args.head_name)
        emb = state.get(EMBEDDING)
        if emb is None:
            raise BadInput(f"{args.pt}: has the head '{args.head_name}' but no '{EMBEDDING}'")
        if head.shape != emb.shape or not torch.equal(head, emb):
            raise BadInput(f"{args.pt}: '{args.head_name}' differs from '{EMBEDDING}': ratrain "
                           "ties the head to the embedding (an untied head cannot be imported)")
    config_path = args.config or args.pt + ".json"
    try:
        with open(config_path) as f:
            raw_config = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"{config_path}: cannot read the model config ({e}); give one with "
                       "--config (the form of model.h5's config attribute)") from None
    rows = state[EMBEDDING].shape[0] if EMBEDDING in state and state[EMBEDDING].dim() else None
    config = normalize_config(raw_config, config_path, rows)
    check_parameters({n: tuple(t.shape) for n, t in state.items()}, config, args.pt, where)

    partial = args.h5 + ".partial"  # renamed when complete: never a torn model file
    try:
        out = h5py.File(partial, "w")
    except OSError as e:
        raise BadInput(f"{args.h5}: cannot write it ({e})") from None
    with out:
        out.attrs["config"] = json.dumps({k: config[k] for k in CONFIG_KEYS} |
                                         {k: v for k, v in config.items() if k not in CONFIG_KEYS})
        for name in sorted(state):
            # bfloat16 and half have no numpy type: through float32, which holds them exactly.
            value = state[name].detach().to("cpu", torch.float32).contiguous().numpy()
            out.create_dataset(f"params/{name}", data=value)
    os.replace(partial, args.h5)
    print(f"{PROG}: {len(state)} parameters of {args.pt}{where} -> {args.h5} (float32)"
          + (f"; head '{args.head_name}' was tied to {EMBEDDING}, dropped" if tied else ""))


def main():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ex = commands.add_parser("export", help="model.h5 or checkpoint folder -> state dict .pt")
    ex.add_argument("src", help="model.h5 or a checkpoint folder (step_N)")
    ex.add_argument("out", help="the .pt file to write (and OUT.pt.json, the config)")
    im = commands.add_parser("import", help="state dict .pt -> model.h5")
    im.add_argument("pt", help="a torch.save'd state dict")
    im.add_argument("h5", help="the model file to write")
    im.add_argument("--config", help="model config JSON (default: IN.pt.json)")
    for p in (ex, im):
        p.add_argument("--head-name", default=DEFAULT_HEAD,
                       help=f"the tied head's key (default {DEFAULT_HEAD}; '' = none)")
    args = parser.parse_args()
    np, h5py, torch = import_modules()
    try:
        (export if args.command == "export" else import_)(args, np, h5py, torch)
    except BadInput as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
