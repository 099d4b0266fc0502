"""The dead wood forming: per-layer magnitude quantiles, and the dead fraction at any κ from them.

During the solve each epoch records, per prunable layer, ``QUANTILES`` evenly spaced quantiles
of ``|w|`` (from the smallest to the largest weight). That is enough to redraw "the dead wood
forming" for any target sparsity κ without the weights: the global threshold θ(κ) is where the
size-weighted mixture of the layers' distribution functions reaches κ, and a layer's dead
fraction is its own distribution function at θ. Between two recorded quantiles the function is
taken as linear, so a fraction is exact to about ``1 / (QUANTILES - 1)`` of the layer.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .masks import magnitudes

QUANTILES = 101  # every percentile: a fraction is good to about one percent of its layer


def magnitude_quantiles(model: nn.Module, points: int = QUANTILES) -> dict[str, list[float]]:
    """Per prunable layer: ``points`` quantiles of ``|w|`` at probabilities 0, 1/(points-1), ..., 1."""
    probs = torch.linspace(0, 1, points)
    out = {}
    for name, m in magnitudes(model).items():
        q = torch.quantile(m.detach().reshape(-1).float().cpu(), probs)
        out[name] = [float(f"{v:.6g}") for v in q.tolist()]
    return out


def _cdf(quantiles: Sequence[float], t: float) -> float:
    """The fraction of a layer's weights at or below ``t``, from its quantiles (linear between)."""
    q = np.asarray(quantiles, dtype=float)
    p = np.linspace(0, 1, len(q))
    if t < q[0]:
        return 0.0
    if t >= q[-1]:
        return 1.0
    # the last probability whose quantile is <= t: ties (many equal magnitudes) count as dead
    i = int(np.searchsorted(q, t, side="right")) - 1
    lo, hi = q[i], q[i + 1]
    return float(p[i] + (p[i + 1] - p[i]) * ((t - lo) / (hi - lo) if hi > lo else 1.0))


def dead_fractions(quantiles: Mapping[str, Sequence[float]], sizes: Mapping[str, int],
                   sparsity: float) -> dict[str, float]:
    """Per layer: the fraction of weights at or below the global threshold θ(κ = ``sparsity``)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    total = sum(sizes[n] for n in quantiles)

    def cut_at(t: float) -> float:
        return sum(sizes[n] * _cdf(q, t) for n, q in quantiles.items()) / total

    lo = min(q[0] for q in quantiles.values())
    hi = max(q[-1] for q in quantiles.values())
    if sparsity == 0:
        return {n: 0.0 for n in quantiles}
    for _ in range(60):  # bisection on θ: the mixture is monotone
        mid = (lo + hi) / 2
        if cut_at(mid) < sparsity:
            lo = mid
        else:
            hi = mid
    return {n: round(_cdf(q, hi), 6) for n, q in quantiles.items()}


def with_dead_fractions(history: list[dict], sizes: Mapping[str, int], sparsity: float) -> list[dict]:
    """``history`` with ``dead_fraction`` at ``sparsity`` added to every entry that holds quantiles."""
    return [{**h, "dead_fraction": dead_fractions(h["magnitude_quantiles"], sizes, sparsity)}
            if h.get("magnitude_quantiles") else h for h in history]
