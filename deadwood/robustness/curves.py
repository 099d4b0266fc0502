"""Security curves: robust accuracy as a step function of ε, exact between steps, from each
sample's smallest successful perturbation (a minimum-norm attack, one pass)."""
from __future__ import annotations

import bisect
from typing import Optional

from torch import nn

from ..data.datasets import ArrayDataset
from ..errors import ConfigError
from ..events import OnEvent
from .evaluation import evaluate
from .specs import SPECS, select, spec_of


def curve_at(norms, epsilons) -> list[float]:
    """The security curve at ``epsilons``: the fraction of samples whose minimal adversarial
    norm is larger than ε (None, i.e. none found, counts as larger than any ε)."""
    n = len(norms)
    if n == 0:
        raise ConfigError("there are no norms to draw a curve from")
    finite = sorted(v for v in norms if v is not None)
    robust_forever = n - len(finite)
    return [(robust_forever + len(finite) - bisect.bisect_right(finite, float(e))) / n for e in epsilons]


def security_curve(model: nn.Module, data: ArrayDataset, *, attack: str = "fmn", steps: Optional[int] = None,
                   samples: Optional[int] = None, seed: int = 0, batch_size: int = 512, device=None,
                   on_event: OnEvent = None) -> dict:
    """Each sample's smallest successful perturbation (a minimum-norm attack, one pass) and the
    security curve it implies: robust accuracy as a step function of ε, exact between steps.

    Returns plain data: attack, norm, steps, samples, seed, clean_accuracy, norms (per sample;
    0 when misclassified, None when no adversarial was found), labels, found (fraction of the
    correctly classified samples for which one was found), and the curve as ``epsilons`` (0,
    then every distinct norm) with ``accuracy`` (``curve_at(norms, epsilons)``), to be drawn as
    a step ("hv") line.
    """
    spec = spec_of(attack)
    if not spec.minimizing:
        minimizing = ", ".join(n for n, s in SPECS.items() if s.minimizing)
        raise ConfigError(f"a security curve needs a minimum-norm attack ({minimizing}), not '{attack}'")
    r = evaluate(model, data, attack, [0.0], steps=steps, samples=samples, seed=seed, batch_size=batch_size,
                 device=device, checks=False, on_event=on_event, warn=False)
    norms = r["norms"]
    grid = [0.0] + sorted({v for v in norms if v is not None and v > 0})
    correct = [v for v in norms if v != 0]
    return {"attack": spec.name, "norm": spec.norm, "steps": r["steps"], "samples": r["samples"], "seed": seed,
            "clean_accuracy": r["clean_accuracy"], "norms": norms,
            "labels": select(data, samples, seed).y.cpu().tolist(),
            "found": (sum(v is not None for v in correct) / len(correct)) if correct else 1.0,
            "epsilons": grid, "accuracy": curve_at(norms, grid), "seconds": r["seconds"]}
