"""Masks: which prunable weights survive.

A :class:`Mask` maps the state_dict name of every prunable tensor to a bool tensor of
the same shape, True = kept. Prunable are the weights of every ``nn.Linear`` and
``nn.Conv2d`` (any ``groups``), as ``torch.nn.utils.prune.global_unstructured`` over them
would take; :func:`select_layers` narrows that to the layers a run names.
Computing a mask (``global_cut``, ``layerwise_cut``, ``random_cut``) is separate
from applying it (``Mask.apply``).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import fnmatch

import torch
from torch import nn

from ..errors import ConfigError

PRUNABLE_TYPES = (nn.Linear, nn.Conv2d)
_SELECTED = "deadwood_prunable"  # the attribute select_layers leaves on a model: its chosen weights


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The prunable parameters by state_dict name: the weight of every ``nn.Linear`` and
    ``nn.Conv2d``, or of the layers :func:`select_layers` chose for ``model``."""
    chosen = getattr(model, _SELECTED, None)
    layers = {f"{n}.weight" if n else "weight": m for n, m in model.named_modules()
              if isinstance(m, PRUNABLE_TYPES) and isinstance(getattr(m, "weight", None), nn.Parameter)}
    params = dict(model.named_parameters())
    return {name: params[name] for name in layers if name in params and (chosen is None or name in chosen)}


def clear_selection(model: nn.Module) -> nn.Module:
    """Forget :func:`select_layers`' choice on ``model`` (in place): every Linear and Conv2d is prunable again."""
    if hasattr(model, _SELECTED):
        delattr(model, _SELECTED)
    return model


def select_layers(model: nn.Module, include=("*",), exclude=()) -> nn.Module:
    """Narrow ``model``'s prunable weights to the Linear and Conv2d layers whose module name
    matches a pattern of ``include`` and none of ``exclude`` (shell patterns, ``fnmatch``:
    ``"features.*"``, ``"fc"``). Raise :class:`ConfigError` for a model without a prunable layer,
    a pattern that matches no layer, or a choice that leaves none."""
    every = list(prunable(clear_selection(model)))
    if not every:
        raise ConfigError(f"{type(model).__name__} has no prunable layer: Deadwooding prunes the weights of "
                          "nn.Linear and nn.Conv2d layers, and it has none")
    names = {w: w.rpartition(".")[0] for w in every}
    shown = ", ".join(list(names.values())[:8]) + (", ..." if len(names) > 8 else "")
    for option, patterns in (("include", include), ("exclude", exclude)):
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names.values()):
                raise ConfigError(f"prune_layers.{option} pattern '{pattern}' matches no prunable layer of "
                                  f"{type(model).__name__}; its layers are: {shown}")
    chosen = tuple(w for w, n in names.items() if any(fnmatch.fnmatchcase(n, p) for p in include)
                   and not any(fnmatch.fnmatchcase(n, p) for p in exclude))
    if not chosen:
        raise ConfigError(f"prune_layers leaves no layer of {type(model).__name__} to prune "
                          f"(include {list(include)}, exclude {list(exclude)})")
    if len(chosen) < len(every):
        setattr(model, _SELECTED, chosen)
    return model


def magnitudes(model: nn.Module) -> dict[str, torch.Tensor]:
    """``|w|`` of every prunable tensor, detached (the default pruning score)."""
    return {name: p.detach().abs() for name, p in prunable(model).items()}


class Mask(Mapping[str, torch.Tensor]):
    """An immutable name -> bool tensor map; True marks a weight that is kept."""

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        self._m = {}
        for name, m in masks.items():
            if not isinstance(m, torch.Tensor):
                raise TypeError(f"mask for '{name}' is a {type(m).__name__}, not a tensor")
            self._m[name] = m.detach().to(torch.bool)

    # Mapping protocol
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._m[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    @classmethod
    def ones_like(cls, model: nn.Module) -> "Mask":
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable(model).items()})

    @classmethod
    def from_model(cls, model: nn.Module) -> "Mask":
        """The mask a model already carries: its nonzero prunable weights."""
        return cls({n: p.detach() != 0 for n, p in prunable(model).items()})

    def to(self, device) -> "Mask":
        return Mask({n: m.to(device) for n, m in self._m.items()})

    # counts
    def sizes(self) -> dict[str, int]:
        return {n: m.numel() for n, m in self._m.items()}

    def zeros(self) -> dict[str, int]:
        return {n: int((~m).sum()) for n, m in self._m.items()}

    def layer_sparsity(self) -> dict[str, float]:
        return {n: int((~m).sum()) / m.numel() for n, m in self._m.items()}

    def sparsity(self) -> float:
        total = sum(self.sizes().values())
        return sum(self.zeros().values()) / total if total else 0.0

    # use
    def check(self, model: nn.Module) -> None:
        """Raise ValueError unless the mask covers exactly the model's prunable tensors."""
        params = prunable(model)
        if set(params) != set(self._m):
            raise ValueError(f"mask names {sorted(self._m)} differ from the model's prunable {sorted(params)}")
        for n, p in params.items():
            if p.shape != self._m[n].shape:
                raise ValueError(f"mask for '{n}' has shape {tuple(self._m[n].shape)}, weight {tuple(p.shape)}")

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero every masked weight of ``model`` in place; returns the model."""
        params = prunable(model)
        for n, m in self._m.items():
            params[n].mul_(m.to(params[n].device, params[n].dtype))
        return model

    def mask_gradients(self, model: nn.Module) -> None:
        """Zero the gradients of masked weights (call between backward and step)."""
        params = prunable(model)
        for n, m in self._m.items():
            g = params[n].grad
            if g is not None:
                g.mul_(m.to(g.device, g.dtype))

    def to_prune_form(self, model: nn.Module) -> nn.Module:
        """Attach the mask as ``torch.nn.utils.prune`` re-parametrisations (weight_orig, weight_mask)."""
        from torch.nn.utils import prune

        modules = dict(model.named_modules())
        for n, m in self._m.items():
            mod_name, _, attr = n.rpartition(".")
            prune.custom_from_mask(modules[mod_name], attr, m.to(getattr(modules[mod_name], attr).device))
        return model


# --------------------------------------------------------------------------- cuts

def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity}")


def _flat(scores: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([s.detach().reshape(-1).float() for s in scores.values()])


def _unflat(flat_keep: torch.Tensor, scores: Mapping[str, torch.Tensor]) -> Mask:
    out, i = {}, 0
    for n, s in scores.items():
        out[n] = flat_keep[i:i + s.numel()].view_as(s)
        i += s.numel()
    return Mask(out)


def global_threshold(scores: Mapping[str, torch.Tensor], sparsity: float) -> float:
    """θ(κ): the largest score among the ``round(κN)`` lowest scores (-inf when none are cut)."""
    _check_sparsity(sparsity)
    flat = _flat(scores)
    k = round(sparsity * flat.numel())
    if k == 0:
        return float("-inf")
    return float(torch.topk(flat, k, largest=False).values.max())


def global_cut(scores: Mapping[str, torch.Tensor], sparsity: float, min_keep: int = 0) -> tuple[Mask, dict]:
    """Cut the ``round(κN)`` lowest scores over all layers at once: one global threshold.

    Selection uses the same ``torch.topk(..., largest=False)`` over the concatenated
    scores as ``torch.nn.utils.prune.global_unstructured``, so both agree exactly.
    With ``min_keep > 0`` a layer the cut would leave with fewer than ``min_keep`` weights
    keeps its ``min_keep`` highest scores, and as many of the lowest surviving weights
    elsewhere are cut instead, so the global sparsity stays exact (docs/method.md, the
    collapse guard). Returns the mask and a report ``{"threshold": θ, "guarded": {layer:
    weights restored}}``; θ is None when nothing is cut (κ = 0, the dense baseline), as a
    report must be plain JSON.
    """
    _check_sparsity(sparsity)
    flat = _flat(scores)
    k = round(sparsity * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    threshold = None
    if k > 0:
        low = torch.topk(flat, k, largest=False)
        keep[low.indices] = False
        threshold = float(low.values.max())
    mask, guarded = _guard_collapse(_unflat(keep, scores), scores, min_keep)
    return mask, {"threshold": threshold, "guarded": guarded}


class GlobalCuts:
    """:func:`global_cut` of the same ``scores`` at many κ, from one sort: a call returns exactly
    what ``global_cut(scores, sparsity, min_keep)`` does. On a large network a cut is one ``topk``
    over every weight (about 1.3 s on resnet18's 11 M at 2 cores), so a profile of 46 cuts of two
    networks spent minutes choosing masks; after the sort, each cut is one comparison. Where equal
    scores straddle the cut (``topk``'s own choice among them decides), it calls :func:`global_cut`."""

    def __init__(self, scores: Mapping[str, torch.Tensor]):
        self.scores = scores
        self.flat = _flat(scores)
        self.sorted = torch.sort(self.flat).values

    def __call__(self, sparsity: float, min_keep: int = 0) -> tuple[Mask, dict]:
        _check_sparsity(sparsity)
        n = self.flat.numel()
        k = round(sparsity * n)
        if k == 0:
            keep, threshold = torch.ones_like(self.flat, dtype=torch.bool), None
        else:
            theta = self.sorted[k - 1]
            if k < n and bool(self.sorted[k] == theta):  # a tie across the cut
                return global_cut(self.scores, sparsity, min_keep)
            keep, threshold = self.flat > theta, float(theta)  # exactly the k lowest
        mask, guarded = _guard_collapse(_unflat(keep, self.scores), self.scores, min_keep)
        return mask, {"threshold": threshold, "guarded": guarded}


def max_sparsity(sizes: Mapping[str, int], min_keep: int) -> float:
    """The highest κ a cut can reach over layers of ``sizes`` while the collapse guard keeps
    ``min_keep`` weights in every layer (1 - kept/N, kept = every layer's guarded weights)."""
    total = sum(sizes.values())
    kept = sum(min(min_keep, n) for n in sizes.values())
    return 1 - kept / total if total else 0.0


def check_cuttable(model: nn.Module, sparsity: float, min_keep: int) -> None:
    """Raise ConfigError, before any work, when ``sparsity`` leaves fewer weights than the
    collapse guard keeps (``min_keep`` in each prunable layer of ``model``)."""
    sizes = {n: p.numel() for n, p in prunable(model).items()}
    top = max_sparsity(sizes, min_keep)
    if round(sparsity * sum(sizes.values())) > round(top * sum(sizes.values())):
        raise ConfigError(f"sparsity {sparsity} is too high for this model: its {len(sizes)} prunable layers hold "
                          f"{sum(sizes.values())} weights and the collapse guard keeps {min_keep} in each, so "
                          f"at most {top:.4f}; lower the sparsity or min_keep")


def _guard_collapse(mask: Mask, scores: Mapping[str, torch.Tensor], min_keep: int) -> tuple[Mask, dict]:
    if min_keep <= 0:
        return mask, {}
    m = {n: t.clone() for n, t in mask.items()}
    guarded: dict[str, int] = {}
    for n, t in m.items():
        want = min(min_keep, t.numel())
        if int(t.sum()) < want:
            top = torch.topk(scores[n].reshape(-1).float(), want).indices
            before = int(t.sum())
            t.view(-1)[top] = True
            guarded[n] = int(t.sum()) - before
    extra = sum(guarded.values())
    if extra:
        # Pay for the restored weights with the lowest survivors of unguarded layers.
        pool = [n for n in m if n not in guarded]
        cand = torch.cat([torch.where(m[n].reshape(-1), scores[n].reshape(-1).float(),
                                      torch.full_like(scores[n].reshape(-1).float(), float("inf")))
                          for n in pool])
        if torch.isfinite(cand).sum() < extra:
            raise ConfigError("sparsity too high to keep every layer alive; lower it or the collapse guard")
        idx = torch.topk(cand, extra, largest=False).indices
        offsets, i = {}, 0
        for n in pool:
            offsets[n] = (i, i + m[n].numel())
            i += m[n].numel()
        for j in idx.tolist():
            for n, (a, b) in offsets.items():
                if a <= j < b:
                    m[n].view(-1)[j - a] = False
                    break
    return Mask(m), guarded


def per_layer_cut(scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]) -> Mask:
    """Cut the ``counts[layer]`` lowest scores of every layer."""
    out = {}
    for n, s in scores.items():
        keep = torch.ones(s.numel(), dtype=torch.bool, device=s.device)
        k = int(counts[n])
        if k:
            keep[torch.topk(s.reshape(-1).float(), k, largest=False).indices] = False
        out[n] = keep.view_as(s)
    return Mask(out)


def layerwise_cut(scores: Mapping[str, torch.Tensor], sparsity: float) -> Mask:
    """Cut the same fraction ``κ`` of lowest scores from every layer (global count exact)."""
    from .allocation import uniform_counts

    _check_sparsity(sparsity)
    return per_layer_cut(scores, uniform_counts({n: s.numel() for n, s in scores.items()}, sparsity))


def random_cut(shapes: Mapping[str, torch.Tensor], sparsity: float, generator: torch.Generator,
               min_keep: int = 0) -> tuple[Mask, dict]:
    """A uniformly random global mask with exactly ``round(κN)`` weights cut."""
    scores = {n: torch.rand(t.shape, generator=generator) for n, t in shapes.items()}
    return global_cut(scores, sparsity, min_keep)


def sparsity_of(model: nn.Module) -> tuple[dict, dict, float]:
    """Per-layer zero fraction and size of every prunable tensor, counted from the
    model's state_dict (as saved), and the global zero fraction."""
    state_dict = model.state_dict()
    sizes = {n: state_dict[n].numel() for n in prunable(model)}
    zeros = {n: int((state_dict[n] == 0).sum()) for n in sizes}
    total = sum(sizes.values())
    return ({n: zeros[n] / sizes[n] for n in sizes}, sizes, sum(zeros.values()) / total if total else 0.0)
