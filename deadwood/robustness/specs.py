"""The evaluation attacks as data: one :class:`AttackSpec` per name, the constants the checks use,
and the validation every public call shares (attack names, epsilons, samples).

``AttackSpec.kind`` names the class that runs the attack (:data:`deadwood.robustness.kinds.KINDS`):
``fixed`` (a foolbox attack at each budget), ``minimum-norm`` (one foolbox run per batch, clipped to
each budget) or ``autoattack`` (torchattacks' components, :mod:`.autoattack`).
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

from ..data.datasets import ArrayDataset
from ..errors import ConfigError

FORMAT = 1  # bump when the result layout changes (cached teacher summaries are recomputed)
DEFAULT_EPSILONS = (0.0, 0.05, 0.1, 0.2)
TOLERANCE = 0.01  # accuracy noise (random starts) the monotone and FGSM checks forgive
CHANCE_MARGIN = 0.05  # how far above chance the large-epsilon check still passes
PGD_GAP = 0.05  # how far PGD-10 may stay above AutoAttack before the pgd-vs-autoattack check fails
AUTOATTACK_STEPS = 100  # APGD-CE, APGD-T, FAB-T iterations in the standard version
SQUARE_QUERIES = 5000
AUTOATTACK_COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


@dataclass(frozen=True)
class AttackSpec:
    name: str
    norm: str  # 'linf' or 'l2'
    kind: str  # 'fixed', 'minimum-norm' or 'autoattack': the class that runs it
    default_steps: int
    reference: Optional[str]  # the single-step attack it must beat (the 'stronger-than-fgsm' check)
    about: str
    package: str = "foolbox"  # the library that runs it
    pgd: Optional[str] = None  # the PGD it is compared with (the 'pgd-vs-autoattack' check)

    @property
    def minimizing(self) -> bool:
        """A minimum-norm attack: one run per batch, clipped to every epsilon."""
        return self.kind == "minimum-norm"


SPECS = {s.name: s for s in (
    AttackSpec("fgsm", "linf", "fixed", 1, None, "FGSM: one signed gradient step of size ε (Goodfellow et al. 2015)"),
    AttackSpec("pgd", "linf", "fixed", 10, "fgsm", "L-inf PGD, random start, steps of 2.5ε/steps (Madry et al. 2018)"),
    AttackSpec("pgd-l2", "l2", "fixed", 10, "fgm", "L2 PGD, random start, steps of 2.5ε/steps"),
    AttackSpec("deepfool", "linf", "minimum-norm", 50, None, "L-inf DeepFool, minimum norm (Moosavi-Dezfooli et al. 2016)"),
    AttackSpec("deepfool-l2", "l2", "minimum-norm", 50, None, "L2 DeepFool, minimum norm"),
    AttackSpec("fmn", "linf", "minimum-norm", 100, "fgsm", "L-inf Fast Minimum Norm (Pintor et al. 2021)"),
    AttackSpec("autoattack", "linf", "autoattack", AUTOATTACK_STEPS, "fgsm", "L-inf AutoAttack, standard: APGD-CE, "
               "APGD-T, FAB-T, Square (Croce & Hein 2020; torchattacks)", "torchattacks", "pgd"),
    AttackSpec("autoattack-l2", "l2", "autoattack", AUTOATTACK_STEPS, "fgm", "L2 AutoAttack, standard: APGD-CE, "
               "APGD-T, FAB-T, Square (torchattacks)", "torchattacks", "pgd-l2"),
)}
EVAL_ATTACKS = tuple(SPECS)
ATTACK_INFO = {n: {"norm": s.norm, "minimum_norm": s.minimizing, "default_steps": s.default_steps, "about": s.about,
                   "package": s.package} for n, s in SPECS.items()}
# The single-step attacks the 'stronger-than-fgsm' check compares with (never asked for by name).
REFERENCE = {"fgsm": AttackSpec("fgsm", "linf", "fixed", 1, None, ""),
             "fgm": AttackSpec("fgm", "l2", "fixed", 1, None, "")}


def spec_of(attack: str) -> AttackSpec:
    """The spec of ``attack``; :class:`ConfigError` naming the choices for an unknown name."""
    if isinstance(attack, str) and attack.startswith("autoattack-") and attack not in SPECS:
        raise ConfigError(f"AutoAttack runs in L-inf ('autoattack') or L2 ('autoattack-l2'); the norm of "
                          f"'{attack}' is not supported by torchattacks' standard version")
    if attack not in SPECS:
        raise ConfigError(f"unknown attack '{attack}'; choose one of: {', '.join(EVAL_ATTACKS)}")
    return SPECS[attack]


def number(value) -> Optional[float]:
    """``value`` as a float when it is a finite real number >= 0 (not a bool), else None."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else None


def check_epsilons(epsilons) -> list[float]:
    """``epsilons`` validated: sorted, without duplicates, 0 first (added when missing).

    Raises :class:`ConfigError` naming the first value that is not a finite number >= 0.
    """
    if isinstance(epsilons, (int, float)) and not isinstance(epsilons, bool):
        epsilons = [epsilons]
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, Iterable):
        raise ConfigError(f"epsilons must be a list of numbers >= 0, got {epsilons!r}")
    values = []
    for e in epsilons:
        v = number(e.item() if isinstance(e, torch.Tensor) and e.numel() == 1 else e)
        if v is None:
            raise ConfigError(f"every epsilon must be a finite number >= 0, got {e!r}")
        values.append(v)
    return sorted({0.0, *values})


def select(data: ArrayDataset, samples, seed: int) -> ArrayDataset:
    """The evaluated samples: ``data.subset(samples, seed)``, the engine's fixed permutation."""
    if not isinstance(data, ArrayDataset):
        raise ConfigError(f"data must be a deadwood ArrayDataset, got {type(data).__name__}")
    if samples is not None and not (isinstance(samples, int) and not isinstance(samples, bool) and samples > 0):
        raise ConfigError(f"samples must be a whole number > 0, got {samples!r}")
    if len(data) == 0:
        raise ConfigError("there are no samples to evaluate")
    return data.subset(samples, seed)


def large_epsilon(norm: str, input_shape) -> float:
    """The budget at which every input in [0, 1]^D can be moved to the centre of the box (so no
    classifier can beat the largest class share): 0.5 in L-inf, ``0.5·√D`` in L2."""
    return 0.5 if norm == "linf" else 0.5 * math.sqrt(math.prod(input_shape))


def distance(norm: str, x: torch.Tensor, xp: torch.Tensor) -> torch.Tensor:
    """Each sample's perturbation size, ``‖xp - x‖`` in ``norm`` ('linf' or 'l2')."""
    d = (xp - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


@functools.cache
def package_info(name: str) -> dict:
    """``{"name", "version"}`` of the library that runs an attack (recorded with every result)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"name": name, "version": version(name)}
    except PackageNotFoundError:
        return {"name": name, "version": None}
