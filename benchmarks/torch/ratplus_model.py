"""RAT+ in PyTorch, written the way the authors train it: the baseline of benchmark d.

The model is RATPLUS.md, step by step (module and parameter names are the authors',
e.g. backbone.layers.3.seq_layer.in_proj.weight, so fixtures load by name):
  seq_layer:    h = RMSNorm(x); [o, q, k, v, g] = h W_in^T; K, V = gated recurrence of
                (g, k, v) in fp32; q, K rotated (RoPE, rotate-half, after the
                recurrence); attention(q, K, V) under the layer's rule; x += (attn *
                sigmoid(o)) W_out^T
  hidden_layer: x += fc2(GELU_erf(fc1(RMSNorm(x))))
  head:         final RMSNorm, logits = x E^T (tied), mean cross-entropy over labels
                != -100.
Training numerics: fp32 parameters (the master weights), bf16 autocast for the matmuls
and attention, the gate and recurrence in fp32, residual stream in fp32.
Attention: dense mode is SDPA (causal); sparse mode uses each layer's rule (D, W, P):
D = 1 dense, D > 1 the two-part FlexAttention of dilated_flex.py, D = -1 its local part
only. Block masks are built once per (T, rule) and passed into the compiled block.
Each block is torch.compile'd (one graph per attention mode, shared by all layers);
activation checkpointing per layer is optional.

Shapes: ids, labels (B, T) int64; x (B, T, d); q, k, v, g, o (B, T, H, dh) before
attention, (B, H, T, dh) inside it.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from bench_common import visible_pairs
from dilated_flex import dilated_attention, make_dilated_masks
from gated_scan import SCAN_VARIANTS

Rule = tuple[int, int, int]  # (D, W, P)
DENSE: Rule = (1, 0, 0)


@dataclass
class RatPlusConfig:
    vocab_size: int = 32000
    d_model: int = 2048
    num_heads: int = 16
    num_layers: int = 24
    ffn_mult: int = 4
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    # Sparse-mode rule per layer (RATPLUS.md "Visibility rules").
    sparse_rules: list[Rule] = field(default_factory=lambda: [(64, 0, 0)] * 24)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    def num_parameters(self) -> int:
        """14 d^2 per layer + V d (tied embedding) + norm weights."""
        d = self.d_model
        return self.num_layers * ((6 + 2 * self.ffn_mult) * d * d + 2 * d) + self.vocab_size * d + d

    def layer_rules(self, mode: str) -> list[Rule]:
        return [DENSE] * self.num_layers if mode == "dense" else list(self.sparse_rules)

    @staticmethod
    def expand_rules(num_layers: int, dilation, window, initial) -> list[Rule]:
        """Per-layer rules from D, W, P each given once or once per layer."""
        def per_layer(value):
            values = value if isinstance(value, list) else [value]
            if len(values) not in (1, num_layers):
                raise ValueError(f"need 1 or {num_layers} values, got {values}")
            return [int(x) for x in values] * (num_layers if len(values) == 1 else 1)
        return list(zip(per_layer(dilation), per_layer(window), per_layer(initial)))

    @classmethod
    def from_ini(cls, path: str) -> "RatPlusConfig":
        """The [model] section of a ratrain config (configs/1.5b.ini)."""
        parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
        parser.read(path)
        model = parser["model"]
        ints = lambda text: [int(x) for x in text.replace(",", " ").split()]  # noqa: E731
        layers = model.getint("num_layers")
        return cls(vocab_size=model.getint("vocab_size"), d_model=model.getint("d_model"),
                   num_heads=model.getint("num_heads"), num_layers=layers,
                   sparse_rules=cls.expand_rules(layers, ints(model.get("dilation", "64")),
                                                 ints(model.get("window", "0")),
                                                 ints(model.get("initial", "0"))))


# ---- pieces -------------------------------------------------------------------------

def rope_tables(seq_len: int, head_dim: int, base: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (T, 1, dh/2) f32 of theta = p * base^(-2c/dh), p = 0..T-1 (ops.hpp rope)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float64) / head_dim)
    angles = torch.arange(seq_len, device=device, dtype=torch.float64)[:, None] * inv_freq
    return angles.cos().float()[:, None, :], angles.sin().float()[:, None, :]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE of x (B, T, H, dh) in fp32, returned in fp32."""
    x = x.float()
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rule: Rule,
              chunk_mask, local_mask) -> torch.Tensor:
    """q, k, v (B, H, T, dh) -> (B, H, T, dh) under `rule`."""
    if rule[0] == 1:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, _ = dilated_attention(q, k, v, rule[0], chunk_mask, local_mask)
    return out


class SeqLayer(nn.Module):
    """The mixer: norm, in_proj (o, q, k, v, g), recurrence, RoPE, attention, gate, out_proj."""

    def __init__(self, config: RatPlusConfig, scan: Callable):
        super().__init__()
        d = config.d_model
        self.heads, self.head_dim = config.num_heads, config.head_dim
        self.input_norm = nn.RMSNorm(d, eps=config.norm_eps)
        self.in_proj = nn.Linear(d, 5 * d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)
        self.scan = scan

    def forward(self, x, cos, sin, rule: Rule, chunk_mask, local_mask):
        batch, seq_len, d = x.shape
        o, q, k, v, g = self.in_proj(self.input_norm(x)).chunk(5, dim=-1)  # each (B, T, d)
        with torch.autocast("cuda", enabled=False):
            K, V = self.scan(g, k, v)  # fp32 recurrence, (B, T, d) in the autocast dtype
        heads = (batch, seq_len, self.heads, self.head_dim)
        q = apply_rope(q.reshape(heads), cos, sin).to(v.dtype)
        K = apply_rope(K.reshape(heads), cos, sin).to(v.dtype)
        attn = attention(q.transpose(1, 2), K.transpose(1, 2), V.reshape(heads).transpose(1, 2),
                         rule, chunk_mask, local_mask)  # (B, H, T, dh)
        attn = attn.transpose(1, 2).reshape(batch, seq_len, d)
        return x + self.out_proj(attn * torch.sigmoid(o))


class HiddenLayer(nn.Module):
    """The FFN: x + fc2(GELU_erf(fc1(RMSNorm(x))))."""

    def __init__(self, config: RatPlusConfig):
        super().__init__()
        d = config.d_model
        self.ln = nn.RMSNorm(d, eps=config.norm_eps)
        self.fc1 = nn.Linear(d, config.ffn_mult * d, bias=False)
        self.fc2 = nn.Linear(config.ffn_mult * d, d, bias=False)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.ln(x)), approximate="none"))


class Block(nn.Module):
    def __init__(self, config: RatPlusConfig, scan: Callable):
        super().__init__()
        self.seq_layer = SeqLayer(config, scan)
        self.hidden_layer = HiddenLayer(config)

    def forward(self, x, cos, sin, rule: Rule, chunk_mask, local_mask):
        return self.hidden_layer(self.seq_layer(x, cos, sin, rule, chunk_mask, local_mask))


class Backbone(nn.Module):
    def __init__(self, config: RatPlusConfig, scan: Callable):
        super().__init__()
        self.layers = nn.ModuleList(Block(config, scan) for _ in range(config.num_layers))
        self.ln = nn.RMSNorm(config.d_model, eps=config.norm_eps)


class Embedding(nn.Module):
    def __init__(self, config: RatPlusConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.d_model)


def tied_head_loss(x: torch.Tensor, norm: nn.Module, embedding: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits = RMSNorm(x) E^T over labels != -100 (fp32 softmax)."""
    logits = F.linear(norm(x), embedding)  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)


class RatPlusLM(nn.Module):
    def __init__(self, config: RatPlusConfig, scan: str = "manual_bwd", compile_blocks: bool = True,
                 activation_checkpointing: bool = False):
        super().__init__()
        self.config = config
        self.embedding = Embedding(config)
        self.backbone = Backbone(config, SCAN_VARIANTS[scan])
        self.activation_checkpointing = activation_checkpointing
        if compile_blocks:
            # Regional compilation: every block compiles the same code, so Dynamo (which
            # treats the parameters of inlined modules as graph inputs) reuses one graph
            # per attention mode for all layers.
            for block in self.backbone.layers:
                block.compile()
        self.loss_fn = torch.compile(tied_head_loss) if compile_blocks else tied_head_loss
        self._masks: dict[tuple[int, Rule], tuple] = {}
        self._rope: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def init_weights(self, std: float = 0.02) -> None:
        """RATPLUS.md "Init": linears and embedding N(0, std), norm weights 1."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            elif isinstance(module, nn.RMSNorm):
                nn.init.ones_(module.weight)

    def _layer_masks(self, seq_len: int, rule: Rule, device) -> tuple:
        """(chunk mask, local mask) of a rule, built once per (T, rule); (None, None) dense."""
        if rule[0] == 1:
            return None, None
        key = (seq_len, rule)
        if key not in self._masks:
            self._masks[key] = make_dilated_masks(seq_len, *rule, device=device)
        return self._masks[key]

    def _rope_tables(self, seq_len: int, device):
        if seq_len not in self._rope:
            self._rope[seq_len] = rope_tables(seq_len, self.config.head_dim, self.config.rope_base,
                                              device)
        return self._rope[seq_len]

    def forward(self, ids: torch.Tensor, labels: torch.Tensor, mode: str) -> torch.Tensor:
        """Mean loss of (B, T) ids against labels in `mode` ("dense" or "sparse")."""
        seq_len = ids.shape[1]
        cos, sin = self._rope_tables(seq_len, ids.device)
        x = self.embedding.wte(ids)  # (B, T, d) fp32: the residual stream
        for block, rule in zip(self.backbone.layers, self.config.layer_rules(mode)):
            args = (x, cos, sin, rule, *self._layer_masks(seq_len, rule, ids.device))
            if self.activation_checkpointing:
                x = checkpoint(block, *args, use_reentrant=False)
            else:
                x = block(*args)
        return self.loss_fn(x, self.backbone.ln, self.embedding.wte.weight, labels)


def training_flops_per_token(config: RatPlusConfig, seq_len: int, mode: str) -> float:
    """Model FLOPs per token of one forward + backward, as model/flops.hpp counts them:
    6 x (14 d^2 per layer + V d for the tied head) for the weights (norm weights and
    the embedding lookup are not matmuls), plus attention 3 x 4 d x (mean visible keys
    per query) per layer (QK^T and PV; backward = 2 x forward)."""
    d = config.d_model
    weights = (6 + 2 * config.ffn_mult) * d * d * config.num_layers + config.vocab_size * d
    flops = 6.0 * weights
    for rule in config.layer_rules(mode):
        flops += 3.0 * 4.0 * d * visible_pairs(seq_len, *rule) / seq_len
    return flops
