"""The authors' two-part dilated attention on FlexAttention (RATPLUS.md "Visibility rules").

Query i sees the disjoint union of
  part 1, chunk ends: j = (m + 1) D - 1 with P <= j <= i - W - 1, attended on the
          compact keys k[:, :, D-1::D] (T/D of them: cost ~ T * T / (2D));
  part 2, local and prefix: j <= i and (i - j <= W or j < P), on the full keys with a
          banded block mask (cost ~ T * (W + P + block)).
Each part returns (out, lse); they are merged by log-sum-exp:
  lse = logaddexp(lse1, lse2),  out = exp(lse1 - lse) out1 + exp(lse2 - lse) out2.
The "- 1" of part 1 keeps a chunk end that lies inside the window (j = i - W) out of
part 1, so no key is counted twice. A query that has no chunk end yet (i < D + W) gets
lse1 = -inf from FlexAttention (and out1 = 0), hence weight exp(-inf) = 0.
Worked example: D = 4, W = 2, P = 1, i = 13: part 1 sees m = 0, 1 (j = 3, 7; m = 2 is
j = 11 = i - W, local); part 2 sees j = 0 (prefix) and 11, 12, 13.

Shapes: q, k, v (B, H, T, dh); out (B, H, T, dh) in q's dtype; lse (B, H, T) f32,
natural log. Block masks are built once per (T, rule), outside the timed region. Their
mask_mods read (D, W, P) from a captured int32 tensor rather than from Python ints, so
that rules of equal shapes share one compiled kernel (Dynamo guards on a captured
tensor's metadata, but on a captured int's value).
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

# PyTorch >= 2.9 returns the LSE through return_aux; return_lse is deprecated there.
_HAS_RETURN_AUX = "return_aux" in inspect.signature(flex_attention).parameters
if _HAS_RETURN_AUX:
    from torch.nn.attention.flex_attention import AuxRequest

    _LSE_REQUEST = AuxRequest(lse=True)

# Eager create_block_mask materialises the (Q, KV) boolean mask and int32 temporaries of
# the same size; above 2^28 entries (T = 16K squared) the compiled builder, which works
# block by block, is used instead (its compile costs seconds, so only where needed).
_EAGER_MASK_ENTRIES = 1 << 28
_compiled_create_block_mask: Optional[Callable] = None


def flex_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: BlockMask,
                  flex: Callable = flex_attention) -> tuple[torch.Tensor, torch.Tensor]:
    """FlexAttention returning (out, lse) with whichever API this PyTorch has."""
    if _HAS_RETURN_AUX:
        out, aux = flex(q, k, v, block_mask=block_mask, return_aux=_LSE_REQUEST)
        return out, aux.lse
    return flex(q, k, v, block_mask=block_mask, return_lse=True)


def chunk_end_mask_mod(rule: torch.Tensor) -> Callable:
    """Part 1 on compact keys: compact index m is position j = (m + 1) D - 1, visible
    to query i iff P <= j <= i - W - 1. rule = int32 tensor [D, W, P]."""
    def mask(b, h, q_idx, kv_idx):
        dilation, window, initial = rule[0], rule[1], rule[2]
        position = (kv_idx + 1) * dilation - 1
        return (position >= initial) & (position + window + 1 <= q_idx)
    return mask


def local_mask_mod(rule: torch.Tensor) -> Callable:
    """Part 2 on all keys: j <= i and (i - j <= W or j < P). rule = [D, W, P]."""
    def mask(b, h, q_idx, kv_idx):
        window, initial = rule[1], rule[2]
        return (kv_idx <= q_idx) & ((q_idx - kv_idx <= window) | (kv_idx < initial))
    return mask


def check_two_part_split(max_seq: int = 40) -> None:
    """Raises AssertionError unless, for every small rule and query, the two masks are
    disjoint and their union is exactly the RAT+ visible set (kernels/visibility.hpp
    is_visible). Pure Python on the mask_mods themselves, with ints in place of tensors,
    so it runs in a second and checks every position, unlike a numerical comparison."""
    for dilation in (-1, 2, 3, 4, 7):
        for window in range(6):
            for initial in range(5):
                rule = [dilation, window, initial]
                chunk, local = chunk_end_mask_mod(rule), local_mask_mod(rule)
                ends = max_seq // dilation if dilation > 1 else 0
                for i in range(max_seq):
                    part1 = {(m + 1) * dilation - 1 for m in range(ends) if chunk(0, 0, i, m)}
                    part2 = {j for j in range(max_seq) if local(0, 0, i, j)}
                    visible = {j for j in range(i + 1) if i - j <= window or j < initial
                               or (dilation > 1 and (j + 1) % dilation == 0)}
                    assert not part1 & part2 and part1 | part2 == visible, \
                        f"rule {rule}, query {i}: chunk ends {part1}, local {part2}, rule {visible}"


def _block_mask(mask_mod: Callable, q_len: int, kv_len: int, device: torch.device) -> BlockMask:
    global _compiled_create_block_mask
    if q_len * kv_len <= _EAGER_MASK_ENTRIES:
        return create_block_mask(mask_mod, None, None, q_len, kv_len, device=device)
    if _compiled_create_block_mask is None:
        _compiled_create_block_mask = torch.compile(create_block_mask)
    return _compiled_create_block_mask(mask_mod, None, None, q_len, kv_len, device=device)


def make_dilated_masks(seq_len: int, dilation: int, window: int, initial: int,
                       device: torch.device) -> tuple[Optional[BlockMask], BlockMask]:
    """(chunk-end mask or None, local mask) for rule (D, W, P), D > 1 or D = -1 (local
    only, no part 1). Part 1 is also absent when T < D (no chunk end exists)."""
    if dilation == 1 or dilation == 0 or dilation < -1:
        raise ValueError(f"dilated attention needs D > 1 or D = -1, got D = {dilation}")
    rule = torch.tensor([dilation, window, initial], dtype=torch.int32, device=device)
    chunk = None
    if dilation > 1 and seq_len // dilation > 0:
        chunk = _block_mask(chunk_end_mask_mod(rule), seq_len, seq_len // dilation, device)
    local = _block_mask(local_mask_mod(rule), seq_len, seq_len, device)
    return chunk, local


def dilated_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dilation: int,
                      chunk_mask: Optional[BlockMask], local_mask: BlockMask,
                      flex: Callable = flex_attention) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-part dilated attention (module docstring). q, k, v (B, H, T, dh).
    Under torch.compile pass flex = flex_attention (traced and fused with the merge);
    eagerly, pass a torch.compile'd flex_attention."""
    out_local, lse_local = flex_with_lse(q, k, v, local_mask, flex)
    if chunk_mask is None:
        return out_local, lse_local
    # Compact chunk-end keys and values: positions D-1, 2D-1, ... -> (B, H, T // D, dh).
    k_ends = k[:, :, dilation - 1::dilation]
    v_ends = v[:, :, dilation - 1::dilation]
    out_ends, lse_ends = flex_with_lse(q, k_ends, v_ends, chunk_mask, flex)
    lse = torch.logaddexp(lse_ends, lse_local)
    weight_ends = torch.exp(lse_ends - lse).unsqueeze(-1)
    weight_local = torch.exp(lse_local - lse).unsqueeze(-1)
    out = weight_ends * out_ends.float() + weight_local * out_local.float()
    return out.to(q.dtype), lse
