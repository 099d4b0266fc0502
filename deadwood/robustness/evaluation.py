"""The public evaluation calls: robust accuracy of one model (:func:`evaluate`), of a teacher and
its pruned model on the same samples (:func:`evaluate_pair`), and one batch's adversarials for
drawing (:func:`adversarial_examples`). Each runs the attack kind its spec names (:mod:`.kinds`).

``evaluate`` returns plain, JSON-ready data::

    attack, norm ('linf' | 'l2'), epsilons (first is 0), accuracy (one per epsilon),
    clean_accuracy (== accuracy[0] for a deterministic model), steps, step_size (None: default),
    samples, seed, batch_size, classes, class_counts,
    per_class_recall {"clean": [per class], "by_epsilon": [[per class] per epsilon]} (None: no samples),
    norms (minimum-norm attacks: each sample's smallest successful perturbation, 0 when already
           misclassified, None when none was found; None for fixed-budget attacks),
    checks [{"name", "passed" (True/False/None = not applicable), "message", ...numbers}],
    warnings [the messages of the failed checks], seconds, format,
    package {"name", "version"} (the library that ran the attack: foolbox or torchattacks),
    autoattack (AutoAttack only, else None): {"version": "standard", "components", "settings",
           "accuracy_after" {component: accuracy after it, per epsilon}}

Conventions. Robust accuracy at ε is the fraction of samples still classified correctly after
the attack at budget ε (already-misclassified samples count as broken at every ε). Samples are
``data.subset(samples, seed)`` (the engine's fixed permutation). Random starts are drawn from
the seed and the batch index only (:mod:`.attacking`); the sanity checks are :mod:`.checks`'.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..data.datasets import ArrayDataset
from ..errors import ConfigError
from ..events import OnEvent
from .attacking import frozen
from .kinds import attack_kind
from .specs import DEFAULT_EPSILONS, check_epsilons, distance, select, spec_of


def evaluate(model: nn.Module, data: ArrayDataset, attack: str = "pgd", epsilons=DEFAULT_EPSILONS, *,
             steps: Optional[int] = None, step_size: Optional[float] = None, samples: Optional[int] = None,
             seed: int = 0, batch_size: int = 512, device=None, checks: bool = True,
             on_event: OnEvent = None, warn: bool = True, stage: str = "eval") -> dict:
    """Robust accuracy of ``model`` under ``attack`` at every epsilon, with per-class recall and
    sanity checks (see the module docstring for the result's fields).

    ``steps`` defaults to the attack's own (pgd 10, deepfool 50, fmn 100); ``step_size`` (pgd,
    pgd-l2) defaults to ``2.5·ε/steps``. ``device`` None means the model's own device. Progress
    goes to ``on_event`` as 'start'/'epoch'/'end' events of ``stage``, one 'epoch' per batch
    and attack run. With ``warn``, failed checks are also raised as :class:`RobustnessWarning`.
    """
    spec = spec_of(attack)
    eps = check_epsilons(epsilons)
    return attack_kind(spec, steps, step_size)(model, data, eps, samples=samples, seed=seed, batch_size=batch_size,
                                               device=device, checks=checks, on_event=on_event, warn=warn,
                                               stage=stage)


def import_backend(attack: str = "pgd") -> None:
    """Import the library behind ``attack`` now, not at its first evaluation. foolbox's import is
    the largest part of a small model's first evaluation (it pulls in git and requests); a
    long-lived process waiting for work (the app's worker) calls this while it waits."""
    package = spec_of(attack).package
    if package == "foolbox":
        from .foolbox_backend import _foolbox

        _foolbox()
    elif package == "torchattacks":
        from .autoattack import _torchattacks

        _torchattacks()


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str = "pgd",
                         epsilon: Optional[float] = 0.1, *, steps: Optional[int] = None,
                         step_size: Optional[float] = None, seed: int = 0, device=None) -> dict:
    """Adversarial versions of one batch ``(x, y)`` (inputs in [0, 1]), for drawing.

    Returns CPU tensors: ``x``, ``x_adv`` (the perturbation clipped to ``epsilon``; a minimum-norm
    attack with ``epsilon=None`` gives its unclipped minimal adversarials), ``y``, ``pred_clean``,
    ``pred_adv``, ``confidence_clean`` / ``confidence_adv`` (softmax probability of the
    predicted class), ``success`` (``pred_adv != y``), ``norm`` (each perturbation's size), plus
    ``attack``, ``epsilon``, ``steps``. The random start depends on the seed only (drawn as
    :func:`evaluate` draws it for a first batch), so dense and pruned models attacked with the
    same seed start from the same points.
    """
    spec = spec_of(attack)
    kind = attack_kind(spec, steps, step_size)
    if epsilon is None:
        if not spec.minimizing:
            raise ConfigError(f"'{attack}' needs an epsilon; only minimum-norm attacks run without one")
    else:
        epsilon = check_epsilons([epsilon])[-1]
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and len(x) == len(y) and len(x) > 0):
        raise ConfigError("x and y must be non-empty tensors of the same length")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ConfigError("inputs must lie in [0, 1]")
    with frozen(model, device) as dev:
        x, y = x.to(dev), y.long().to(dev)
        xa = x.clone() if epsilon == 0 else kind.adversarials(model, x, y, epsilon, seed, dev)
        with torch.no_grad():
            p0, p1 = model(x).softmax(1), model(xa).softmax(1)
    c0, c1 = p0.max(1), p1.max(1)
    return {"attack": spec.name, "epsilon": epsilon, "steps": kind.steps, "x": x.cpu(), "x_adv": xa.detach().cpu(),
            "y": y.cpu(), "pred_clean": c0.indices.cpu(), "pred_adv": c1.indices.cpu(),
            "confidence_clean": c0.values.cpu(), "confidence_adv": c1.values.cpu(),
            "success": (c1.indices != y).cpu(), "norm": distance(spec.norm, x, xa).cpu()}


def evaluate_pair(teacher: nn.Module, pruned: nn.Module, data: ArrayDataset, attack: str = "pgd",
                  epsilons=DEFAULT_EPSILONS, **kwargs) -> dict:
    """:func:`evaluate` for the dense teacher and the pruned model on the same samples with the
    same seed (so the same random starts): ``{"teacher": result, "pruned": result}``."""
    samples, seed = kwargs.pop("samples", None), kwargs.get("seed", 0)
    data = select(data, samples, seed)
    return {"teacher": evaluate(teacher, data, attack, epsilons, **kwargs),
            "pruned": evaluate(pruned, data, attack, epsilons, **kwargs)}
