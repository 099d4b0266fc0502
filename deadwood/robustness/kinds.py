"""The evaluation's attack kinds, in the manner of foolbox's ``attacks/base.py``: one base class
whose final call does the work every kind shares, and one small class per kind that writes only
how its attack runs on a batch.

The shared work (:meth:`AttackKind.__call__`): the samples (``data.subset(samples, seed)``), the
model in eval mode with its parameters frozen, batching, the clean pass through plain torch (the
epsilon-zero check's reference), per-class recall, the sanity checks (:mod:`.checks`, with FGSM
and PGD-10 run here as :class:`FixedBudget` on the same batches and seeds) and progress events.

The kinds, registered in :data:`KINDS` under the name an :class:`~.specs.AttackSpec` gives:

- ``fixed`` (:class:`FixedBudget`): a foolbox attack at each budget, seeded per batch;
- ``minimum-norm`` (:class:`MinimumNorm`): one foolbox run per batch, clipped to each budget, and
  each sample's smallest successful perturbation;
- ``autoattack`` (:class:`StandardAutoAttack`): AutoAttack's standard ensemble at each budget.
"""
from __future__ import annotations

import math
import time
import warnings
from abc import ABC, abstractmethod
from typing import Callable, Optional, final

import torch
from torch import nn

from ..data.datasets import ArrayDataset, DatasetInfo
from ..errors import ConfigError
from ..events import OnEvent, emit
from . import foolbox_backend as fb
from .attacking import check_finite, frozen
from .autoattack import AutoAttack
from .checks import RobustnessWarning, run_checks
from .specs import (AUTOATTACK_COMPONENTS, AUTOATTACK_STEPS, FORMAT, REFERENCE, SPECS, SQUARE_QUERIES, AttackSpec,
                    check_epsilons, large_epsilon, number, package_info, select)

Tick = Callable[[], None]


def per_class_recall(correct: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list:
    """``recall[c] = #(correct and label c) / #(label c)``; None for a class without samples.

    Weighted by the class counts, the recalls sum to the overall accuracy.
    """
    counts = torch.bincount(labels, minlength=num_classes)
    hits = torch.bincount(labels[correct.bool()], minlength=num_classes)
    return [float(h) / int(n) if n else None for h, n in zip(hits, counts)]


def _fraction(correct: torch.Tensor) -> float:
    return int(correct.sum()) / len(correct)


class AttackKind(ABC):
    """One evaluation attack (``spec``, with ``steps`` and ``step_size`` checked). Call it to
    evaluate a model; subclasses override the parts below ``__call__`` only."""

    def __init__(self, spec: AttackSpec, steps: Optional[int] = None, step_size: Optional[float] = None):
        self.spec = spec
        self.steps = self.resolve_steps(steps, step_size)
        self.step_size = step_size

    @final
    def __call__(self, model: nn.Module, data: ArrayDataset, epsilons, *, samples: Optional[int] = None,
                 seed: int = 0, batch_size: int = 512, device=None, checks: bool = True,
                 on_event: OnEvent = None, warn: bool = True, stage: str = "eval") -> dict:
        """The result that :func:`deadwood.robustness.evaluate` returns (its docstring says the fields)."""
        t0 = time.perf_counter()
        spec, eps = self.spec, check_epsilons(epsilons)
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise ConfigError(f"batch_size must be a whole number > 0, got {batch_size!r}")
        data = select(data, samples, seed)
        info = data.info
        big = large_epsilon(spec.norm, info.input_shape)
        big_check = checks and self.attacks_at(eps)
        extra = [big] if big_check and big not in eps else []
        reference = REFERENCE[spec.reference] if checks and spec.reference else None
        pgd = SPECS[spec.pgd] if checks and spec.pgd else None
        # the attacks the checks compare with, at every positive epsilon of the same batches
        compared = [FixedBudget(s, s.default_steps) if s else None for s in (reference, pgd)]
        positive = [e for e in eps if e > 0]

        runs = self.ticks(eps + extra) + sum(len(positive) for c in compared if c)
        total, done = -(-len(data) // batch_size) * runs, 0
        emit(on_event, "start", stage, 0, total)

        def tick():
            nonlocal done
            done += 1
            emit(on_event, "epoch", stage, done, total)

        clean, correct, records, compared_rows = [], [], [], [[], []]
        with frozen(model, device) as dev:
            for kind in (self, *compared):
                if kind:
                    kind.prepare(model, info, dev)
            for b, i in enumerate(range(0, len(data), batch_size)):
                x, y = data.x[i:i + batch_size].to(dev), data.y[i:i + batch_size].to(dev)
                with torch.no_grad():
                    logits = model(x)  # clean, through plain torch: the epsilon-zero check's reference
                check_finite(logits, b)
                ok = logits.argmax(1) == y
                clean.append(ok.cpu())
                rows, record = self.run(x, y, ok, eps + extra, seed, b, tick)
                correct.append(rows.cpu())
                records.append(record)
                for kind, out in zip(compared, compared_rows):
                    if kind:
                        out.append(kind.run(x, y, ok, positive, seed, b, tick)[0].cpu())

        clean_ok = torch.cat(clean)
        all_correct = torch.cat(correct, dim=1)  # (epsilons + extra, N)
        sweep, big_row = all_correct[:len(eps)], (all_correct[len(eps):] if extra else None)
        labels = data.y.cpu()
        acc = [_fraction(r) for r in sweep]
        result = {
            "attack": spec.name, "norm": spec.norm, "epsilons": eps, "accuracy": acc,
            "clean_accuracy": _fraction(clean_ok), "steps": self.steps,
            "step_size": None if self.step_size is None else float(self.step_size), "samples": len(data),
            "seed": seed, "batch_size": batch_size,
            "classes": list(info.classes) or [str(c) for c in range(info.num_classes)],
            "class_counts": torch.bincount(labels, minlength=info.num_classes).tolist(),
            "per_class_recall": {"clean": per_class_recall(clean_ok, labels, info.num_classes),
                                 "by_epsilon": [per_class_recall(r, labels, info.num_classes) for r in sweep]},
            "norms": None, "checks": [], "warnings": [], "format": FORMAT, "package": package_info(spec.package),
            "autoattack": None,
        }
        result.update(self.fields(records, len(eps), info, len(data)))
        if checks:
            if not big_check:
                big_acc = None
            elif big in eps:
                big_acc = acc[eps.index(big)]
            else:
                big_acc = _fraction(big_row[0])
            ref_acc, pgd_acc = ([_fraction(r) for r in torch.cat(rows, dim=1)] if kind else None
                                for kind, rows in zip(compared, compared_rows))
            # Sample by sample, not by count: a noisy model can land on the same count by chance.
            agrees = torch.equal(clean_ok.bool(), sweep[0].bool()) if eps[0] == 0 else True
            result["checks"] = run_checks(result, info.num_classes, big, big_acc, reference, ref_acc,
                                          agrees=agrees, pgd=pgd.name if pgd else None, pgd_acc=pgd_acc)
            result["warnings"] = [c["message"] for c in result["checks"] if c["passed"] is False]
            if warn:
                for message in result["warnings"]:
                    warnings.warn(message, RobustnessWarning, stacklevel=3)  # evaluate's caller
        emit(on_event, "end", stage, total, total)
        result["seconds"] = time.perf_counter() - t0
        return result

    # ------------------------------------------------------------------ the parts a kind writes

    @abstractmethod
    def resolve_steps(self, steps: Optional[int], step_size: Optional[float]) -> int:
        """The iterations this attack runs; :class:`ConfigError` for settings it does not take."""

    @abstractmethod
    def prepare(self, model: nn.Module, info: DatasetInfo, device: torch.device) -> None:
        """Build the attack for ``model`` on ``device`` (once per evaluation, the model frozen)."""

    @abstractmethod
    def run(self, x: torch.Tensor, y: torch.Tensor, ok: torch.Tensor, epsilons: list[float], seed: int,
            batch: int, tick: Tick) -> tuple[torch.Tensor, object]:
        """One batch: per-sample correctness at each of ``epsilons`` (one row each) and what this
        kind records of the batch for :meth:`fields`. ``ok`` is the clean pass's correctness;
        ``tick()`` is called :meth:`ticks` times."""

    @abstractmethod
    def adversarials(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: Optional[float],
                     seed: int, device: torch.device) -> torch.Tensor:
        """One batch's adversarial inputs at ``epsilon`` > 0, random starts drawn as a first batch's."""

    def ticks(self, epsilons: list[float]) -> int:
        """Progress events per batch: one per attack run."""
        return len(epsilons)

    def attacks_at(self, epsilons: list[float]) -> bool:
        """Whether an evaluation at ``epsilons`` runs the attack at all (else no large-epsilon check)."""
        return True

    def fields(self, records: list, sweep: int, info: DatasetInfo, samples: int) -> dict:
        """This kind's own result fields, from the batch records of :meth:`run` (the first ``sweep``
        rows of each are the asked epsilons)."""
        return {}


class _Foolbox(AttackKind):
    """The kinds foolbox runs (:mod:`.foolbox_backend`)."""
    takes_step_size = True

    def resolve_steps(self, steps, step_size):
        steps = self.spec.default_steps if steps is None else steps
        if not (isinstance(steps, int) and not isinstance(steps, bool) and steps > 0):
            raise ConfigError(f"steps must be a whole number > 0, got {steps!r}")
        if step_size is not None:
            if not self.takes_step_size:
                raise ConfigError(f"step_size applies to pgd and pgd-l2 only, not to '{self.spec.name}'")
            if number(step_size) in (None, 0.0):
                raise ConfigError(f"step_size must be a number > 0, got {step_size!r}")
        return steps

    def prepare(self, model, info, device):
        self.fmodel, self.device = fb.wrap(model, device), device
        self.attack = fb.build(self.spec.name, self.steps, self.step_size)

    def adversarials(self, model, x, y, epsilon, seed, device):
        attack = fb.build(self.spec.name, self.steps, self.step_size)
        return fb.adversarials(fb.wrap(model, device), attack, x, y, epsilon, seed, device)


class FixedBudget(_Foolbox):
    """A foolbox attack run once per budget, its random start seeded by ``(seed, batch)``."""

    def resolve_steps(self, steps, step_size):
        if self.spec.default_steps == 1:  # a single step (FGSM): nothing to tune
            if steps not in (None, 1) or step_size is not None:
                raise ConfigError(f"{self.spec.name} is a single step of size epsilon; it takes no steps or "
                                  "step_size")
            return 1
        return super().resolve_steps(steps, step_size)

    def run(self, x, y, ok, epsilons, seed, batch, tick):
        rows = []
        for e in epsilons:
            rows.append(fb.fixed(self.fmodel, self.attack, x, y, e, seed, batch, self.device))
            tick()
        return (torch.stack(rows) if rows else torch.zeros(0, len(x), dtype=torch.bool)), None


class MinimumNorm(_Foolbox):
    """A foolbox minimum-norm attack, run once per batch and clipped to every budget; it records
    each sample's smallest successful perturbation (``norms``)."""
    takes_step_size = False

    def run(self, x, y, ok, epsilons, seed, batch, tick):
        correct, norms = fb.minimizing(self.fmodel, self.attack, self.spec.norm, x, y, epsilons, ok)
        tick()
        return correct, norms.cpu()

    def ticks(self, epsilons):
        return 1

    def fields(self, records, sweep, info, samples):
        return {"norms": [None if math.isinf(v) else round(v, 7) for v in torch.cat(records).tolist()]}


class StandardAutoAttack(AttackKind):
    """AutoAttack's standard version (:mod:`.autoattack`); it records the accuracy left after each
    component (``autoattack``). At epsilon 0 it runs nothing: the clean pass is the answer."""

    def resolve_steps(self, steps, step_size):
        if steps not in (None, AUTOATTACK_STEPS) or step_size is not None:
            raise ConfigError(f"{self.spec.name} is AutoAttack's standard version: its iterations are fixed at "
                              f"{AUTOATTACK_STEPS} and it takes no step_size")
        return AUTOATTACK_STEPS

    def prepare(self, model, info, device):
        self.ensemble = AutoAttack(model, self.spec.norm, info.num_classes, info.input_shape, device)

    def run(self, x, y, ok, epsilons, seed, batch, tick):
        rows, counts = [], []
        for e in epsilons:
            if e == 0:
                rows.append(ok)
                counts.append([int(ok.sum())] * len(AUTOATTACK_COMPONENTS))
                tick()
            else:
                _, c, after = self.ensemble(x, y, e, seed, batch, done=tick)
                rows.append(c)
                counts.append(after)
        return torch.stack(rows), counts

    def ticks(self, epsilons):  # one per component, so the bar moves while a slow ensemble runs
        return sum(len(AUTOATTACK_COMPONENTS) if e > 0 else 1 for e in epsilons)

    def attacks_at(self, epsilons):
        return any(e > 0 for e in epsilons)

    def fields(self, records, sweep, info, samples):
        after = [[sum(counts[j][k] for counts in records) for k in range(len(AUTOATTACK_COMPONENTS))]
                 for j in range(sweep)]
        return {"autoattack": {
            "version": "standard", "components": list(AUTOATTACK_COMPONENTS),
            "settings": {"steps": AUTOATTACK_STEPS, "restarts": 1, "target_classes": info.num_classes - 1,
                         "square_queries": SQUARE_QUERIES, "square_p_init": 0.8, "apgd_rho": 0.75},
            "accuracy_after": {name: [a[k] / samples for a in after]
                               for k, name in enumerate(AUTOATTACK_COMPONENTS)}}}

    def adversarials(self, model, x, y, epsilon, seed, device):
        with torch.no_grad():
            classes = model(x[:1]).shape[-1]  # the targets of APGD-T and FAB-T: every other class
        return AutoAttack(model, self.spec.norm, classes, x.shape[1:], device)(x, y, epsilon, seed, 0)[0]


KINDS: dict[str, type[AttackKind]] = {"fixed": FixedBudget, "minimum-norm": MinimumNorm,
                                      "autoattack": StandardAutoAttack}


def attack_kind(spec: AttackSpec, steps: Optional[int] = None, step_size: Optional[float] = None) -> AttackKind:
    """The attack ``spec`` names, of the kind its spec registers, with its steps checked."""
    return KINDS[spec.kind](spec, steps, step_size)
