"""The RAT+ gated recurrence in PyTorch, on torch._higher_order_ops.associative_scan.

Forward (RATPLUS.md step 4; ops.hpp gated_scan_forward), per (batch, channel) along T:
  a_t = sigmoid(g_t),  K_t = a_t K_{t-1} + (1 - a_t) k_t,  V_t likewise, K_0 = V_0 = 0.
Each step is the affine map K -> a K + x with x = (1 - a) k, and affine maps compose
associatively: (a1, x1) o (a2, x2) = (a1 a2, a2 x1 + x2) (apply 1, then 2). K and V share
the gate, so one scan carries the triple (a, x_k, x_v).

Backward, by hand (ops.hpp gated_scan_backward): the adjoint of the state obeys
  S_t = dK_t + a_{t+1} S_{t+1}   (S_T = dK_T),
the same recurrence run from the end, i.e. a reverse scan of (a_{t+1}, dK_t). Then
  dk_t = (1 - a_t) S^K_t,  dv_t = (1 - a_t) S^V_t,
  dg_t = a_t (1 - a_t) [S^K_t (K_{t-1} - k_t) + S^V_t (V_{t-1} - v_t)].

Shapes: g, k, v, K, V and their gradients (B, T, C) in the storage dtype (bf16); the
gate (B, T, C) f32; all arithmetic in fp32 (the recurrence state never leaves fp32).
Two differentiable forms are offered: `gated_scan_autograd` lets PyTorch differentiate
through associative_scan; `gated_scan_manual` is an autograd.Function with the
backward above (it saves exactly what ratrain's op saves: gate, k, v, K, V).
"""
from __future__ import annotations

import torch
from torch._higher_order_ops.associative_scan import associative_scan


def _compose(earlier, later):
    """(a1, x1, y1) o (a2, x2, y2): two affine steps sharing the gate as one."""
    a1, x1, y1 = earlier
    a2, x2, y2 = later
    return a1 * a2, a2 * x1 + x2, a2 * y1 + y2


def scan_forward(g: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(gate f32, K, V in k's dtype), all (B, T, C); scan along dim 1 in fp32."""
    gate = torch.sigmoid(g.float())
    keep = 1.0 - gate
    _, K, V = associative_scan(_compose, (gate, keep * k.float(), keep * v.float()), dim=1,
                               combine_mode="pointwise")
    return gate, K.to(k.dtype), V.to(v.dtype)


def _shift_later(x: torch.Tensor) -> torch.Tensor:
    """x_{t+1} along dim 1, zero past the end: (B, T, C) -> (B, T, C)."""
    return torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)


def _shift_earlier(x: torch.Tensor) -> torch.Tensor:
    """x_{t-1} along dim 1, zero before the start (the zero initial state)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)


def scan_backward(gate: torch.Tensor, k: torch.Tensor, v: torch.Tensor, K: torch.Tensor,
                  V: torch.Tensor, dK: torch.Tensor, dV: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dg, dk, dv) in k's dtype from the saved forward values (module docstring).
    The adjoint scan runs on time-reversed sequences (an explicit flip, which Inductor
    folds into the scan's loads and stores, rather than reverse=True, whose operand
    order for this non-commutative combine is not documented): in flipped order the
    running value is S_{t+1} and element t is (a_{t+1}, dK_t), so composing them gives
    S_t = a_{t+1} S_{t+1} + dK_t."""
    flipped = [torch.flip(x, dims=[1]) for x in (_shift_later(gate), dK.float(), dV.float())]
    _, adj_k, adj_v = associative_scan(_compose, tuple(flipped), dim=1, combine_mode="pointwise")
    adj_k, adj_v = torch.flip(adj_k, dims=[1]), torch.flip(adj_v, dims=[1])
    keep = 1.0 - gate
    d_gate = adj_k * (_shift_earlier(K.float()) - k.float()) + \
        adj_v * (_shift_earlier(V.float()) - v.float())
    dg = d_gate * gate * keep
    return dg.to(k.dtype), (keep * adj_k).to(k.dtype), (keep * adj_v).to(v.dtype)


class _GatedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, k, v):
        gate, K, V = scan_forward(g, k, v)
        ctx.save_for_backward(gate, k, v, K, V)
        return K, V

    @staticmethod
    def backward(ctx, dK, dV):
        return scan_backward(*ctx.saved_tensors, dK.contiguous(), dV.contiguous())


def gated_scan_manual(g: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, V) with the hand-written reverse-scan backward."""
    return _GatedScan.apply(g, k, v)


def gated_scan_autograd(g: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, V) differentiated by PyTorch through associative_scan."""
    _, K, V = scan_forward(g, k, v)
    return K, V


SCAN_VARIANTS = {"manual_bwd": gated_scan_manual, "autograd": gated_scan_autograd}


def reference_scan(g: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential fp64 loop over T (a checker for small slices, not a baseline)."""
    gate = torch.sigmoid(g.double())
    state_k = torch.zeros_like(gate[:, 0])
    state_v = torch.zeros_like(gate[:, 0])
    Ks, Vs = [], []
    for t in range(g.shape[1]):
        a = gate[:, t]
        state_k = a * state_k + (1 - a) * k[:, t].double()
        state_v = a * state_v + (1 - a) * v[:, t].double()
        Ks.append(state_k)
        Vs.append(state_v)
    return torch.stack(Ks, dim=1), torch.stack(Vs, dim=1)
