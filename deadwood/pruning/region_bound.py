"""An upper bound on the linear regions of a pruned ReLU MLP, and a layer allocation that maximises it.

Serra, Tjandraatmadja & Ramalingam (ICML 2018, Theorem 1): a ReLU network with input
dimension ``n_0`` and hidden widths ``n_1 .. n_L`` has at most

    B = Σ_{(j_1..j_L) ∈ J} Π_l C(n_l, j_l),
    J = {j ∈ Z^L : 0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l) for every l}

linear regions. Cai et al. ("Getting Away with More Network Pruning: From Sparsity to
Geometry and Linear Regions", CPAIOR 2023) extend it with the ranks of the weight
matrices, which pruning lowers, and take its expectation over random sparse matrices
of each layer's density (their Theorem 1). The paper's exact statement was not
available to us; what this module implements is our reading of it:

    B(r) = Σ_{j ∈ J(r)} Π_l C(n_l, j_l),
    J(r) = {j : 0 <= j_l <= min(n_0, r_1, ..., r_l, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)},

with ``r_l = rank(W_l)``. It holds because (a) inside one region the image of the input
after layer ``k`` lies in an affine space of dimension at most ``min(n_0, r_1..r_k,
active units of layers 1..k)``, and (b) ``n`` hyperplanes whose normals span a space of
rank ``r`` cut a ``d``-dimensional space like an arrangement in ``min(d, r)`` dimensions.
With full-rank matrices (``r_l = min(n_l, n_{l-1})``) it is exactly Serra et al.'s bound.

The expected bound at per-layer densities ``δ_l`` is ``E[B] = Σ_r Π_l P(r_l) B(r)``
(ranks independent across layers). ``P(r_l = k)`` is estimated by sampling, per layer,
``samples`` random ``n_l x n_{l-1}`` matrices with exactly ``round(δ_l · n_l · n_{l-1})``
nonzero entries at uniformly random positions; the rank of such a matrix with continuous
random values is, with probability 1, the structural rank of its nonzero pattern (the
size of a maximum matching), which is what we compute. Each sample draws one random
order of positions and keeps a prefix of it, so a higher density keeps a superset of
positions: the estimate never falls as a density rises.

All bounds are computed exactly (Python integers; expectations as fractions) by a
dynamic programme over the running cap ``min(n_0, r_1.., n_1 - j_1, ..)``.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError


def _dp(input_dim: int, widths: Sequence[int], rank_weights: Sequence[Sequence[tuple[int, int]]]) -> int:
    """Σ over rank choices (integer weights) and j ∈ J(r) of Π_l weight · C(n_l, j_l)."""
    states: dict[int, int] = {int(input_dim): 1}  # running cap -> summed weight
    for n, dist in zip(widths, rank_weights):
        nxt: dict[int, int] = defaultdict(int)
        for cap, value in states.items():
            for r, w in dist:
                c = min(cap, r, n)
                for j in range(c + 1):
                    nxt[min(cap, r, n - j)] += value * w * math.comb(n, j)
        states = nxt
    return sum(states.values())


def region_bound(input_dim: int, widths: Sequence[int], ranks: Sequence[int] | None = None) -> int:
    """``B(r)``: the bound on linear regions of a ReLU MLP with the given hidden widths and
    weight ranks (``None``: full rank, Serra et al.'s bound)."""
    widths = [int(w) for w in widths]
    fan_in = [int(input_dim)] + widths[:-1]
    if ranks is None:
        ranks = [min(n, m) for n, m in zip(widths, fan_in)]
    if len(ranks) != len(widths):
        raise ValueError(f"{len(widths)} hidden layers but {len(ranks)} ranks")
    return _dp(input_dim, widths, [[(int(r), 1)] for r in ranks])


def log10(value) -> float:
    """log10 of a (possibly huge) int or Fraction, without overflowing a float."""
    value = Fraction(value)
    if value <= 0:
        return float("-inf")
    return math.log10(value.numerator) - math.log10(value.denominator)


# --------------------------------------------------------------------------- sampled ranks

def structural_rank(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> int:
    """The structural rank of a nonzero pattern: the rank of almost every matrix with it."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import structural_rank as _srank

    if len(rows) == 0:
        return 0
    return int(_srank(csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)))


class RankSampler:
    """Ranks of ``samples`` random sparse ``shape`` matrices at any number of nonzeros.

    Sample ``s`` fixes one random order of the positions; the matrix with ``k`` nonzeros
    keeps the first ``k`` of it (common random numbers across densities).
    """

    def __init__(self, shape: tuple[int, int], samples: int, seed: int):
        self.shape = (int(shape[0]), int(shape[1]))
        rng = np.random.default_rng(seed)
        size = self.shape[0] * self.shape[1]
        self.orders = [rng.permutation(size) for _ in range(samples)]
        self._memo: dict[int, list[int]] = {}

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def ranks(self, kept: int) -> list[int]:
        kept = max(0, min(int(kept), self.size))
        if kept not in self._memo:
            out = []
            for order in self.orders:
                rows, cols = np.divmod(order[:kept], self.shape[1])
                out.append(structural_rank(rows, cols, self.shape))
            self._memo[kept] = out
        return self._memo[kept]


def expected_region_bound(samplers: Sequence[RankSampler], kept: Sequence[int]) -> Fraction:
    """``E[B]`` for hidden layers sampled by ``samplers`` (input dim = the first's fan-in)
    with ``kept[l]`` nonzero weights each, over the samplers' empirical rank distributions."""
    widths = [s.shape[0] for s in samplers]
    dists, denom = [], 1
    for s, k in zip(samplers, kept):
        ranks = s.ranks(k)
        dists.append(sorted(Counter(ranks).items()))
        denom *= len(ranks)
    return Fraction(_dp(samplers[0].shape[1], widths, dists), denom)


# --------------------------------------------------------------------------- models

def hidden_layers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The weights of an MLP's hidden Linear layers, in order (all but the output layer).

    Raises ValueError for a model whose prunable weights are not all Linear layers.
    """
    linears = [(f"{n}.weight", m.weight) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    others = [n for n, p in model.named_parameters() if p.dim() > 1 and n not in dict(linears)]
    if others or not linears:
        raise ValueError("the region bound covers fully connected ReLU networks; this model has "
                         f"other weight layers ({', '.join(others) or 'no Linear layer'})")
    return linears[:-1]


def linear_shapes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``{weight name: (out, in)}`` of an MLP's Linear layers in forward order (output layer last)."""
    hidden = hidden_layers(model)
    last = [(f"{n}.weight", m.weight) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return {n: tuple(w.shape) for n, w in hidden + [last]}


def model_region_bound(model: nn.Module) -> int:
    """``B(r)`` for a trained MLP, with the numerical ranks of its actual hidden weights."""
    layers = hidden_layers(model)
    ranks = [int(torch.linalg.matrix_rank(w.detach().double())) for _, w in layers]
    return region_bound(layers[0][1].shape[1], [w.shape[0] for _, w in layers], ranks)


# --------------------------------------------------------------------------- allocation

def bound_allocation(shapes: Mapping[str, tuple[int, int]], sparsity: float, *, min_keep: int = 0,
                     samples: int = 16, seed: int = 0) -> tuple[dict[str, int], dict]:
    """Per-layer cut counts for an MLP that maximise the expected region bound.

    ``shapes`` lists the Linear weights in forward order; the last is the output layer,
    which does not enter the bound and is cut at the global fraction ``κ``. The hidden
    layers share the remaining cut of ``round(κN)`` so as to maximise ``E[B]`` at their
    densities: a hill climb from the uniform allocation that moves blocks of kept weights
    from one layer to another while that strictly raises ``E[B]``, halving the block
    size when no move helps (down to 1/256 of the hidden budget). Where the bound is
    flat (typically at moderate sparsity, where every sampled matrix keeps full rank)
    the allocation stays uniform. Many allocations reach the same bound; of those on the
    segment from the uniform allocation to the one found, the nearest to uniform is
    returned. Returns the counts and a report (densities, bounds).
    """
    names = list(shapes)
    if len(names) < 2:
        raise ValueError("the region bound needs at least one hidden layer and an output layer")
    sizes = {n: int(shapes[n][0]) * int(shapes[n][1]) for n in names}
    total_cut = round(sparsity * sum(sizes.values()))
    out = names[-1]
    hidden = names[:-1]
    cut_out = min(round(sparsity * sizes[out]), max(0, sizes[out] - min_keep))
    hidden_size = sum(sizes[n] for n in hidden)
    budget = hidden_size - (total_cut - cut_out)  # weights the hidden layers keep
    lo = {n: min(min_keep, sizes[n]) for n in hidden}
    if budget < sum(lo.values()):
        raise ConfigError("sparsity too high to keep every layer alive; lower it or the collapse guard")
    keep = _proportional(budget, [sizes[n] for n in hidden])
    keep = start = dict(zip(hidden, keep))
    samplers = [RankSampler(shapes[n], samples, seed + i) for i, n in enumerate(hidden)]

    def score(k: dict[str, int]) -> Fraction:
        return expected_region_bound(samplers, [k[n] for n in hidden])

    uniform = score(keep)
    best = uniform
    step = max(1, budget // 8)
    floor = max(1, budget // 256)
    while step >= floor:
        move = None
        for a in hidden:
            for b in hidden:
                d = min(step, keep[a] - lo[a], sizes[b] - keep[b])
                if a == b or d <= 0:
                    continue
                trial = dict(keep)
                trial[a] -= d
                trial[b] += d
                value = score(trial)
                if value > best and (move is None or value > move[0]):
                    move = (value, trial)
        if move is None:
            step //= 2
        else:
            best, keep = move
    keep = _pull_back(keep, start, best, score)
    cuts = {n: sizes[n] - keep[n] for n in hidden}
    cuts[out] = total_cut - sum(cuts.values())
    report = {"allocation": "bound", "densities": {n: (sizes[n] - cuts[n]) / sizes[n] for n in names},
              "log10_bound": log10(best), "log10_bound_uniform": log10(uniform), "samples": samples}
    return cuts, report


def _pull_back(found: dict[str, int], uniform: dict[str, int], best: Fraction, score, points: int = 64) -> dict:
    """The allocation nearest ``uniform`` on the segment to ``found`` that still scores ``best``.

    The bound is flat over wide ranges (a layer's sampled ranks stop rising once they
    are full), so many allocations tie; of those the climb can reach, we keep the one
    that departs least from the uniform cut.
    """
    names = list(found)
    for i in range(points + 1):
        t = i / points
        trial = {n: uniform[n] + round(t * (found[n] - uniform[n])) for n in names}
        trial[names[-1]] += sum(found.values()) - sum(trial.values())  # keep the budget exact
        if score(trial) >= best:
            return trial
    return found


def _proportional(total: int, sizes: list[int]) -> list[int]:
    """Integers proportional to ``sizes`` adding up to ``total`` (largest remainder)."""
    whole = sum(sizes)
    exact = [total * s / whole for s in sizes]
    out = [min(int(e), s) for e, s in zip(exact, sizes)]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - out[i], reverse=True)
    i = 0
    while sum(out) < total:
        j = order[i % len(order)]
        if out[j] < sizes[j]:
            out[j] += 1
        i += 1
    return out


def bound_curve(shapes: Mapping[str, tuple[int, int]], sparsities: Sequence[float], *, min_keep: int = 0,
                samples: int = 16, seed: int = 0) -> list[dict]:
    """For each sparsity: ``log10 E[B]`` at the uniform and at the bound-guided allocation,
    and the guided per-layer densities (one :func:`bound_allocation` each)."""
    rows = []
    for s in sparsities:
        _, report = bound_allocation(shapes, s, min_keep=min_keep, samples=samples, seed=seed)
        rows.append({"sparsity": float(s), "log10_uniform": report["log10_bound_uniform"],
                     "log10_guided": report["log10_bound"], "densities": report["densities"]})
    return rows
