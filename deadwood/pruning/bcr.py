"""Block-based column-row (BCR) masks, after GRIM (Niu et al., PLDI 2021).

Each weight matrix, convolutions in GEMM form (``out x in*kh*kw``), is tiled into
``block_rows x block_cols`` blocks (the last row and column of blocks may be
smaller). Inside every block, whole rows and whole columns are pruned: a *segment*
(one row or one column of one block) is scored by its L2 norm divided by
``sqrt(length)``, so that the rows and columns of a non-square block compete on
equal terms (for square blocks this is the L2 norm's order). Segments are cut in
ascending score order, over all layers at once (one global order, like the
unstructured global cut) or per layer to given counts, until the requested number
of weights is zero. A row and a column of the same block overlap in one weight, so
the count can land only on a segment boundary: the result is the cut closest to the
target, within one segment's length of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from ..errors import ConfigError
from .masks import Mask, _check_sparsity


def gemm_form(t: torch.Tensor) -> torch.Tensor:
    """A weight as the matrix its layer multiplies by: ``(out, in * kh * kw)`` for convolutions."""
    return t.reshape(t.shape[0], -1)


@dataclass
class _Tiles:
    """One layer's scores tiled into blocks, with its row and column segment scores."""

    name: str
    shape: torch.Size
    rows: int
    cols: int
    br: int
    bc: int
    nrb: int
    ncb: int
    row_score: torch.Tensor  # (nrb, ncb, br); +inf for padding rows
    col_score: torch.Tensor  # (nrb, ncb, bc)
    block_norm: torch.Tensor  # (nrb, ncb)
    real_rows: torch.Tensor  # (nrb, ncb) rows of each block inside the matrix
    real_cols: torch.Tensor  # (nrb, ncb)

    @property
    def block_size(self) -> torch.Tensor:
        return self.real_rows * self.real_cols

    @classmethod
    def of(cls, name: str, scores: torch.Tensor, br: int, bc: int) -> "_Tiles":
        m = gemm_form(scores.detach().float().cpu())
        rows, cols = m.shape
        nrb, ncb = -(-rows // br), -(-cols // bc)
        padded = torch.zeros(nrb * br, ncb * bc)
        padded[:rows, :cols] = m
        real = torch.zeros_like(padded)
        real[:rows, :cols] = 1
        blocks = padded.view(nrb, br, ncb, bc).permute(0, 2, 1, 3)  # (nrb, ncb, br, bc)
        real_b = real.view(nrb, br, ncb, bc).permute(0, 2, 1, 3)
        sq = blocks.pow(2)
        row_len, col_len = real_b.sum(-1), real_b.sum(-2)
        inf = torch.tensor(float("inf"))
        row_score = torch.where(row_len > 0, sq.sum(-1).sqrt() / row_len.clamp_min(1).sqrt(), inf)
        col_score = torch.where(col_len > 0, sq.sum(-2).sqrt() / col_len.clamp_min(1).sqrt(), inf)
        return cls(name, scores.shape, rows, cols, br, bc, nrb, ncb, row_score, col_score,
                   sq.sum((-1, -2)).sqrt(), (row_len > 0).sum(-1), (col_len > 0).sum(-1))

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def keep(self, row_cut: torch.Tensor, col_cut: torch.Tensor) -> torch.Tensor:
        """The bool keep-mask (the weight's shape) when the flagged segments are cut."""
        gone = row_cut.view(self.nrb, self.ncb, self.br, 1) | col_cut.view(self.nrb, self.ncb, 1, self.bc)
        full = (~gone).permute(0, 2, 1, 3).reshape(self.nrb * self.br, self.ncb * self.bc)
        return full[:self.rows, :self.cols].reshape(self.shape)

    def protected(self, min_keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column flags of the highest-norm blocks holding at least ``min_keep`` weights."""
        rows = torch.zeros(self.nrb, self.ncb, self.br, dtype=torch.bool)
        cols = torch.zeros(self.nrb, self.ncb, self.bc, dtype=torch.bool)
        want = min(min_keep, self.size)
        order = torch.argsort(self.block_norm.view(-1), descending=True, stable=True)
        held = 0
        for b in order.tolist():
            if held >= want:
                break
            i, j = divmod(b, self.ncb)
            rows[i, j], cols[i, j] = True, True
            held += int(self.block_size[i, j])
        return rows, cols


class _Order:
    """Every cuttable segment of a set of layers in ascending score order.

    ``rank[(layer, kind)]`` holds each segment's position in the order (``len(self)``
    for segments that may not be cut: padding and protected blocks), so the masks of
    the first ``t`` segments are ``rank < t``. ``prefix_zeros[t]`` is the number of
    weights those ``t`` segments zero: a segment adds its length less the crossing
    segments of its block already cut (a row and a column share one weight).
    """

    def __init__(self, tiles: list[_Tiles], protect: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.tiles = tiles
        flat, block, length, kind, spans = [], [], [], [], []
        offset = 0
        for t in tiles:
            for k, s, side, other in ((0, t.row_score, t.br, t.real_cols), (1, t.col_score, t.bc, t.real_rows)):
                s = s.reshape(-1).clone()
                if t.name in protect:
                    s[protect[t.name][k].reshape(-1)] = float("inf")
                b = torch.arange(s.numel()) // side  # block of each segment, row-major over (nrb, ncb)
                flat.append(s)
                block.append(b + offset)
                length.append(other.reshape(-1)[b])
                kind.append(torch.full_like(b, k))
                spans.append((t.name, k, s.numel()))
            offset += t.nrb * t.ncb
        scores = torch.cat(flat) if flat else torch.zeros(0)
        cuttable = torch.isfinite(scores)
        self.n = int(cuttable.sum())
        order = torch.argsort(torch.where(cuttable, scores, torch.tensor(float("inf"))), stable=True)[:self.n]
        rank = torch.full((len(scores),), self.n, dtype=torch.long)
        rank[order] = torch.arange(self.n)
        self.rank, i = {}, 0
        for name, k, size in spans:
            self.rank[(name, k)] = rank[i:i + size]
            i += size
        self.prefix_zeros = self._prefix_zeros(torch.cat(block)[order], torch.cat(kind)[order],
                                               torch.cat(length)[order])

    @staticmethod
    def _prefix_zeros(block: torch.Tensor, kind: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        n = len(block)
        by_block = torch.argsort(block, stable=True)  # grouped by block, in cut order inside each group
        b, k = block[by_block], kind[by_block]
        start = torch.ones(n, dtype=torch.bool)
        start[1:] = b[1:] != b[:-1]
        group_first = torch.cummax(torch.where(start, torch.arange(n), torch.zeros(n, dtype=torch.long)), 0).values
        crossing_before = torch.zeros(n, dtype=torch.long)
        for kk in (0, 1):  # for a row: the columns of its block cut before it, and vice versa
            other = (k == 1 - kk).long()
            before = torch.cumsum(other, 0) - other  # 'other' segments strictly earlier, over all blocks
            crossing_before = torch.where(k == kk, before - before[group_first], crossing_before)
        delta = torch.empty(n, dtype=torch.long)
        delta[by_block] = length[by_block] - crossing_before
        return torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(delta, 0)])

    def __len__(self) -> int:
        return self.n

    def masks(self, t: int) -> dict[str, torch.Tensor]:
        """Keep-masks with the first ``t`` segments of the order cut."""
        return {tile.name: tile.keep(self.rank[(tile.name, 0)] < t, self.rank[(tile.name, 1)] < t)
                for tile in self.tiles}

    def cut_segments(self, t: int) -> tuple[int, int]:
        """(rows, columns) among the first ``t`` segments."""
        return tuple(sum(int((self.rank[(tile.name, k)] < t).sum()) for tile in self.tiles) for k in (0, 1))

    def zeros(self, t: int) -> int:
        return int(self.prefix_zeros[t])

    def closest(self, target: int) -> int:
        """The prefix length whose zero count is nearest ``target`` (ties: the larger cut)."""
        if self.zeros(self.n) < target:
            return self.n
        t = int(torch.searchsorted(self.prefix_zeros, torch.tensor(target)))  # first t with zeros >= target
        if t > 0 and target - self.zeros(t - 1) < self.zeros(t) - target:
            return t - 1
        return t


def bcr_cut(scores: Mapping[str, torch.Tensor], sparsity: float, block: tuple[int, int] = (8, 8),
            min_keep: int = 0, counts: Mapping[str, int] | None = None) -> tuple[Mask, dict]:
    """A BCR mask: whole rows and columns of ``block``-sized tiles cut by their scores' L2 norm.

    Without ``counts``, one global order over every layer's segments cuts the number
    of weights nearest ``round(κN)``; with ``counts`` (layer -> weights to cut), each
    layer is cut to its own count. With ``min_keep > 0``, a layer the cut would leave
    with fewer weights keeps its highest-norm blocks whole, and the cut is redone so the
    total stays on target. Returns the mask and a report (block, rows and columns cut,
    guarded layers).
    """
    _check_sparsity(sparsity)
    br, bc = block
    if br < 1 or bc < 1:
        raise ConfigError(f"block sides must be >= 1, got {block}")
    tiles = [_Tiles.of(n, s, br, bc) for n, s in scores.items()]
    total = sum(t.size for t in tiles)
    protect: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    while True:
        if counts is None:
            order = _Order(tiles, protect)
            chosen = [(order, order.closest(round(sparsity * total)))]
        else:
            chosen = []
            for t in tiles:
                order = _Order([t], protect)
                chosen.append((order, order.closest(int(counts[t.name]))))
        keep = {n: m for order, t in chosen for n, m in order.masks(t).items()}
        collapsed = [t for t in tiles if min_keep > 0 and t.name not in protect
                     and int(keep[t.name].sum()) < min(min_keep, t.size)]
        if not collapsed:
            break
        for t in collapsed:
            protect[t.name] = t.protected(min_keep)
    rows_cut = sum(order.cut_segments(t)[0] for order, t in chosen)
    cols_cut = sum(order.cut_segments(t)[1] for order, t in chosen)
    mask = Mask({n: keep[n].to(scores[n].device) for n in scores})
    return mask, {"granularity": "bcr", "block": [br, bc], "rows_cut": rows_cut, "columns_cut": cols_cut,
                  "guarded": {n: int(keep[n].sum()) for n in protect}}
