"""Robustness: the one module that imports foolbox and torchattacks, and the one every reported
robustness number comes from.

Training-time attacks stay in plain, differentiable PyTorch (:mod:`deadwood.robustness.training`, re-exported
here as ``fgsm``, ``pgd``, ``perturb``, ``ATTACKS``): training needs one every mini-batch. What the
project *reports* is measured with foolbox 3, and AutoAttack with torchattacks (see "AutoAttack"
below). Both are imported inside the functions that use them, because importing foolbox (scipy.ndimage,
git, requests) adds about 0.3 s to every CLI start-up.

Public API (locked: the app, the notebooks and the benchmark build on it)::

    EVAL_ATTACKS   names accepted below, each an L-inf or L2 attack on inputs in [0, 1]:
                   fgsm, pgd, pgd-l2, autoattack, autoattack-l2 (fixed budget) and deepfool,
                   deepfool-l2, fmn (minimum norm)
    ATTACK_INFO    name -> {"norm", "minimum_norm", "default_steps", "about", "package"} (for menus and labels)
    evaluate(model, data, attack="pgd", epsilons=(0, .05, .1, .2), *, steps=None, step_size=None,
             samples=None, seed=0, batch_size=512, device=None, checks=True, on_event=None,
             warn=True) -> dict
    security_curve(model, data, *, attack="fmn", steps=None, samples=None, seed=0, batch_size=512,
                   device=None, on_event=None) -> dict
    curve_at(norms, epsilons) -> list[float]
    adversarial_examples(model, x, y, attack="pgd", epsilon=0.1, *, steps=None, step_size=None,
                         seed=0, device=None) -> dict
    evaluate_pair(teacher, pruned, data, attack="pgd", epsilons=..., **evaluate_kwargs)
        -> {"teacher": dict, "pruned": dict}
    check_epsilons(epsilons) -> list[float]          (sorted, unique, starting at 0)
    pgd_vs_autoattack(epsilons, autoattack_accuracy, pgd_accuracy, samples, pgd="pgd") -> dict
                                                     (the check, for two results on the same samples)
    package_info(name) -> {"name", "version"}        (the library behind an attack)
    RobustnessWarning                                (category of the sanity-check warnings)
    ModelOutputError (deadwood.errors)               (raised when the model's logits are NaN or infinite)

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
the seed and the batch index only, so the number at one ε does not depend on which other
epsilons are in the sweep, and two models evaluated with the same seed, samples and batch size
see the same random starts. While attacked, a model is in eval mode with its parameters frozen
(foolbox back-propagates with ``loss.backward()``, which would otherwise also compute, and
accumulate, every weight gradient); both are restored afterwards.

Sanity checks (Carlini et al. 2019, "On evaluating adversarial robustness"), recorded with every
evaluation and raised as :class:`RobustnessWarning` when they fail. A failure means the attack
missed what a working attack finds, most often because the model masks its gradients (sometimes
because the attack has too few steps), so the robust accuracy it reports is overestimated:

- ``epsilon-zero``: accuracy at ε = 0 equals the clean accuracy, exactly;
- ``monotone``: accuracy never rises with ε (by more than :data:`TOLERANCE`);
- ``stronger-than-fgsm``: a multi-step attack is not weaker than FGSM (FGM for L2) at the same ε;
- ``large-epsilon``: at ε = :func:`large_epsilon` (L-inf 0.5: every input can reach the centre of
  the box, so no classifier can be robust) accuracy falls to chance + :data:`CHANCE_MARGIN`;
- ``pgd-vs-autoattack`` (AutoAttack results only): PGD-10 (pgd or pgd-l2, as ``evaluate`` runs it
  by default, same samples, seed and batches) leaves no more than :data:`PGD_GAP` (or one sample,
  whichever is larger) above AutoAttack's robust accuracy at any ε. A larger gap means the PGD
  numbers reported elsewhere overestimate robustness: PGD has too few steps, or the model masks
  its gradients (AutoAttack's targeted DLR loss is scale-free and Square uses no gradient at all).
  The PGD accuracies are recorded in the check (``pgd_accuracy``).

AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks"), the "standard" version, L-inf (``autoattack``) or L2
(``autoattack-l2``): APGD-CE, then APGD-T, FAB-T and Square, each run only on the samples that
every earlier one left correctly classified, as the reference implementation (fra31/auto-attack,
``AutoAttack.run_standard_evaluation``) runs them. The components are torchattacks 3.5.1's
(``APGD``, ``APGDT``, ``FAB``, ``Square``), built here with the reference's ``set_version('standard')``
settings rather than through ``torchattacks.AutoAttack``, because that class departs from them:

============  =====================================  ==================================  ============
component     reference (fra31/auto-attack)          torchattacks.AutoAttack 3.5.1       used here
============  =====================================  ==================================  ============
APGD-CE       n_iter 100, 1 restart, rho .75         steps 10 (its default)              100
APGD-T        n_iter 100, 1 restart, 9 targets       steps 10, n_classes - 1 targets     100, C - 1
FAB-T         n_iter 100, 1 restart, 9 targets,      steps 10, multi-targeted,           100
              alpha_max .1, eta 1.05, beta .9        same alpha_max, eta, beta
Square        n_queries 5000, p_init .8, 1 restart,  n_queries 5000, p_init .8,          resc False
              margin loss, resc_schedule False       resc_schedule True (its default)
============  =====================================  ==================================  ============

Checked against the reference source: the order of the components, that each runs on the still
robust samples only, APGD's schedule (checkpoints at 22 %, then shrinking by 3 % to at least 6 % of
the iterations; step halving when fewer than 75 % of the steps raised the loss), APGD-T's and
FAB-T's targets (the 2nd to the C-th most likely class; the reference fixes 9 for 10 classes),
the CE, targeted-DLR and margin losses. With fewer than 10 classes the targets are C - 1. The
random starts come from ``seed`` and the batch index (each component reseeds the global generator,
which is restored afterwards). ``steps`` is fixed at 100: the standard version takes no tuning.
"""
from __future__ import annotations

import bisect
import contextlib
import functools
import math
import numbers
import time
import warnings
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
from torch import nn

from ..data.datasets import ArrayDataset
from ..device import model_device, resolve_device
from ..errors import ConfigError, ModelOutputError
from ..events import OnEvent, emit

FORMAT = 1  # bump when the result layout changes (cached teacher summaries are recomputed)
DEFAULT_EPSILONS = (0.0, 0.05, 0.1, 0.2)
TOLERANCE = 0.01  # accuracy noise (random starts) the monotone and FGSM checks forgive
CHANCE_MARGIN = 0.05  # how far above chance the large-epsilon check still passes
PGD_GAP = 0.05  # how far PGD-10 may stay above AutoAttack before the pgd-vs-autoattack check fails
AUTOATTACK_STEPS = 100  # APGD-CE, APGD-T, FAB-T iterations in the standard version
SQUARE_QUERIES = 5000
AUTOATTACK_COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


@dataclass(frozen=True)
class _Spec:
    name: str
    norm: str  # 'linf' or 'l2'
    minimizing: bool  # a minimum-norm attack: one run per batch, clipped to every epsilon
    default_steps: int
    reference: Optional[str]  # the single-step attack it must beat (the 'stronger-than-fgsm' check)
    about: str
    package: str = "foolbox"  # the library that runs it
    pgd: Optional[str] = None  # the PGD it is compared with (the 'pgd-vs-autoattack' check)


_SPECS = {s.name: s for s in (
    _Spec("fgsm", "linf", False, 1, None, "FGSM: one signed gradient step of size ε (Goodfellow et al. 2015)"),
    _Spec("pgd", "linf", False, 10, "fgsm", "L-inf PGD, random start, steps of 2.5ε/steps (Madry et al. 2018)"),
    _Spec("pgd-l2", "l2", False, 10, "fgm", "L2 PGD, random start, steps of 2.5ε/steps"),
    _Spec("deepfool", "linf", True, 50, None, "L-inf DeepFool, minimum norm (Moosavi-Dezfooli et al. 2016)"),
    _Spec("deepfool-l2", "l2", True, 50, None, "L2 DeepFool, minimum norm"),
    _Spec("fmn", "linf", True, 100, "fgsm", "L-inf Fast Minimum Norm (Pintor et al. 2021)"),
    _Spec("autoattack", "linf", False, AUTOATTACK_STEPS, "fgsm", "L-inf AutoAttack, standard: APGD-CE, APGD-T, "
          "FAB-T, Square (Croce & Hein 2020; torchattacks)", "torchattacks", "pgd"),
    _Spec("autoattack-l2", "l2", False, AUTOATTACK_STEPS, "fgm", "L2 AutoAttack, standard: APGD-CE, APGD-T, "
          "FAB-T, Square (torchattacks)", "torchattacks", "pgd-l2"),
)}
EVAL_ATTACKS = tuple(_SPECS)
ATTACK_INFO = {n: {"norm": s.norm, "minimum_norm": s.minimizing, "default_steps": s.default_steps, "about": s.about,
                   "package": s.package} for n, s in _SPECS.items()}
_REFERENCE = {"fgsm": _Spec("fgsm", "linf", False, 1, None, ""), "fgm": _Spec("fgm", "l2", False, 1, None, "")}


class RobustnessWarning(UserWarning):
    """A robustness sanity check failed: the numbers may reflect gradient masking, not robustness."""


# --------------------------------------------------------------------------- validation

def _spec(attack: str) -> _Spec:
    if isinstance(attack, str) and attack.startswith("autoattack-") and attack not in _SPECS:
        raise ConfigError(f"AutoAttack runs in L-inf ('autoattack') or L2 ('autoattack-l2'); the norm of "
                          f"'{attack}' is not supported by torchattacks' standard version")
    if attack not in _SPECS:
        raise ConfigError(f"unknown attack '{attack}'; choose one of: {', '.join(EVAL_ATTACKS)}")
    return _SPECS[attack]


def _number(value) -> Optional[float]:
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
        v = _number(e.item() if isinstance(e, torch.Tensor) and e.numel() == 1 else e)
        if v is None:
            raise ConfigError(f"every epsilon must be a finite number >= 0, got {e!r}")
        values.append(v)
    return sorted({0.0, *values})


def _resolve_steps(spec: _Spec, steps, step_size) -> int:
    if spec.name == "fgsm":
        if steps not in (None, 1) or step_size is not None:
            raise ConfigError("fgsm is a single step of size epsilon; it takes no steps or step_size")
        return 1
    if spec.package == "torchattacks":
        if steps not in (None, AUTOATTACK_STEPS) or step_size is not None:
            raise ConfigError(f"{spec.name} is AutoAttack's standard version: its iterations are fixed at "
                              f"{AUTOATTACK_STEPS} and it takes no step_size")
        return AUTOATTACK_STEPS
    if steps is None:
        steps = spec.default_steps
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps > 0):
        raise ConfigError(f"steps must be a whole number > 0, got {steps!r}")
    if step_size is not None:
        if spec.minimizing:
            raise ConfigError(f"step_size applies to pgd and pgd-l2 only, not to '{spec.name}'")
        if _number(step_size) in (None, 0.0):
            raise ConfigError(f"step_size must be a number > 0, got {step_size!r}")
    return steps


def _select(data: ArrayDataset, samples, seed: int) -> ArrayDataset:
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


# --------------------------------------------------------------------------- foolbox plumbing

@functools.cache
def _foolbox():
    """foolbox, imported on first use; its import-time scipy deprecation notice is not ours to show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import foolbox
        import foolbox.attacks  # noqa: F401
    return foolbox


def _build(name: str, steps: int, step_size: Optional[float]):
    fa = _foolbox().attacks

    if name == "fgsm":
        return fa.LinfFastGradientAttack(random_start=False)
    if name == "fgm":
        return fa.L2FastGradientAttack(random_start=False)
    if name in ("pgd", "pgd-l2"):
        cls = fa.LinfProjectedGradientDescentAttack if name == "pgd" else fa.L2ProjectedGradientDescentAttack
        size = {"rel_stepsize": 2.5 / steps} if step_size is None else {"abs_stepsize": float(step_size)}
        return cls(steps=steps, random_start=True, **size)
    if name == "deepfool":
        return fa.LinfDeepFoolAttack(steps=steps)
    if name == "deepfool-l2":
        return fa.L2DeepFoolAttack(steps=steps)
    if name == "fmn":
        return fa.LInfFMNAttack(steps=steps)
    raise AssertionError(name)


# --------------------------------------------------------------------------- torchattacks plumbing

@functools.cache
def _torchattacks():
    """torchattacks, imported on first use (it is only needed for AutoAttack)."""
    import torchattacks

    return torchattacks


@functools.cache
def package_info(name: str) -> dict:
    """``{"name", "version"}`` of the library that runs an attack (recorded with every result)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"name": name, "version": version(name)}
    except PackageNotFoundError:
        return {"name": name, "version": None}


class _Images(nn.Module):
    """``model`` seen through 4-D inputs (N, C, H, W), which torchattacks' APGD and Square need;
    vector inputs (D,) travel as (1, a, D/a), ``a`` the largest divisor of D up to √D."""

    def __init__(self, model: nn.Module, input_shape, device):
        super().__init__()
        self.model, self.shape = model, tuple(input_shape)
        if len(self.shape) == 3:
            self.view = self.shape
        else:
            d = math.prod(self.shape)
            a = max(k for k in range(1, math.isqrt(d) + 1) if d % k == 0)
            self.view = (1, a, d // a)
        # torchattacks reads its device from the first parameter (and prints when there is none)
        self.anchor = nn.Parameter(torch.empty(0, device=device), requires_grad=False)

    def forward(self, x):
        return self.model(x.reshape(len(x), *self.shape))


class _AutoAttack:
    """AutoAttack's standard version on one batch, component by component (module docstring)."""

    def __init__(self, model: nn.Module, norm: str, num_classes: int, input_shape, device):
        if norm not in ("linf", "l2"):
            raise ConfigError(f"AutoAttack runs in linf or l2, not {norm!r}")
        if num_classes < 2:
            raise ConfigError(f"AutoAttack needs at least 2 classes, got {num_classes}")
        self.net = _Images(model, input_shape, device)
        self.norm, self.classes, self.device = {"linf": "Linf", "l2": "L2"}[norm], num_classes, device
        self._norm = norm

    def components(self, eps: float, seed: int) -> list:
        ta, net, norm, c = _torchattacks(), self.net, self.norm, self.classes
        steps = AUTOATTACK_STEPS
        attacks = [
            ta.APGD(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, loss="ce", eot_iter=1, rho=.75),
            ta.APGDT(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, eot_iter=1, rho=.75,
                     n_classes=c),
            ta.FAB(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, multi_targeted=True, n_classes=c,
                   alpha_max=.1, eta=1.05, beta=.9),
            ta.Square(net, norm=norm, eps=eps, n_queries=SQUARE_QUERIES, n_restarts=1, seed=seed, p_init=.8,
                      loss="margin", resc_schedule=False),
        ]
        for a in attacks:
            a.set_device(self.device)
        return list(zip(AUTOATTACK_COMPONENTS, attacks))

    def __call__(self, x, y, eps: float, seed: int, batch: int, done=None):
        """``(x_adv, correct, after)``: the adversarial batch (the input where no component
        succeeded), per-sample correctness under the whole ensemble, and the count still
        correct after each component. ``done()`` is called after each component."""
        s = (seed * 1_000_003 + batch) % (2 ** 63)
        xi = x.reshape(len(x), *self.net.view)
        adv = xi.clone()
        with torch.no_grad():
            correct = self.net(xi).argmax(1) == y
        after = []
        with _seeded(seed, batch, self.device):  # the components reseed the global generator: restored after
            for _, attack in self.components(eps, s):
                idx = correct.nonzero().flatten()
                if len(idx):
                    xa = attack(xi[idx], y[idx]).detach()
                    with torch.no_grad():
                        # a success counts only inside the budget and the box (each component keeps to
                        # them; this makes sure, as the reference's final check does)
                        inside = (_distance(self._norm, xi[idx], xa) <= eps * (1 + 1e-5) + 1e-7) \
                            & (xa.flatten(1).amin(1) >= 0) & (xa.flatten(1).amax(1) <= 1)
                        broken = (self.net(xa).argmax(1) != y[idx]) & inside
                    adv[idx[broken]] = xa[broken]
                    correct[idx[broken]] = False
                after.append(int(correct.sum()))
                if done:
                    done()
        return adv.reshape(x.shape), correct, after


def _resolve_device(model: nn.Module, device) -> torch.device:
    """``device`` None: where the model lives; otherwise as every run resolves it."""
    return model_device(model) if device is None else resolve_device(device)


@contextlib.contextmanager
def _attacking(model: nn.Module, device):
    """``model`` on ``device``, in eval mode, parameters frozen; everything restored on exit.
    Yields ``(foolbox model, device)``."""
    fb = _foolbox()
    dev = _resolve_device(model, device)
    params = list(model.parameters())
    was_training, grads = model.training, [p.requires_grad for p in params]
    home = params[0].device if params else dev
    model.eval()
    if home != dev:  # .to() walks every tensor even when nothing moves; skip it when nothing would
        model.to(dev)
    for p in params:
        p.requires_grad_(False)
    try:
        yield fb.PyTorchModel(model, bounds=(0, 1), device=dev), dev
    finally:
        for p, g in zip(params, grads):
            p.requires_grad_(g)
        if home != dev:
            model.to(home)
        model.train(was_training)


@contextlib.contextmanager
def _seeded(seed: int, batch: int, device: torch.device):
    """The global RNG (foolbox draws its random starts from it) seeded from ``(seed, batch)``,
    restored on exit so that evaluating never changes the caller's random stream."""
    # Not torch.manual_seed / fork_rng: they also visit every lazy accelerator backend, and
    # format a stack trace each time they do (a millisecond per call, per epsilon and batch).
    s = (seed * 1_000_003 + batch) % (2 ** 63)
    cuda = device.type == "cuda"
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if cuda else None
    torch.default_generator.manual_seed(s)
    if cuda:
        with torch.cuda.device(device):
            torch.cuda.manual_seed(s)
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state(cuda_state, device)


def _distance(norm: str, x: torch.Tensor, xp: torch.Tensor) -> torch.Tensor:
    d = (xp - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


def _predict(fmodel, x: torch.Tensor) -> torch.Tensor:
    return fmodel(x).argmax(-1)


def _fixed(fmodel, attack, x, y, eps: float, seed: int, batch: int, dev) -> torch.Tensor:
    """Per-sample correctness under a fixed-budget attack at ``eps`` (no attack at 0)."""
    if eps == 0:
        return _predict(fmodel, x) == y
    with _seeded(seed, batch, dev):
        _, _, success = attack(fmodel, x, y, epsilons=eps)
    return ~success


def _minimizing(fmodel, attack, spec: _Spec, x, y, epsilons: list[float], clean_correct):
    """One minimum-norm run: correctness at each epsilon (the perturbation clipped to it) and
    each sample's norm (0 when misclassified already, inf when no adversarial was found)."""
    raw, _, success = attack(fmodel, x, y, epsilons=[*epsilons, None])
    found = success[-1]
    dist = _distance(spec.norm, x, raw[-1])
    norms = torch.where(clean_correct, torch.where(found, dist, torch.full_like(dist, math.inf)),
                        torch.zeros_like(dist))
    return ~success[:-1], norms


# --------------------------------------------------------------------------- public API

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
    t0 = time.perf_counter()
    spec = _spec(attack)
    eps = check_epsilons(epsilons)
    steps = _resolve_steps(spec, steps, step_size)
    if not (isinstance(batch_size, int) and batch_size > 0):
        raise ConfigError(f"batch_size must be a whole number > 0, got {batch_size!r}")
    data = _select(data, samples, seed)
    info = data.info
    big = large_epsilon(spec.norm, info.input_shape)
    reference = _REFERENCE[spec.reference] if checks and spec.reference else None
    aa = spec.package == "torchattacks"
    # AutoAttack asked for epsilon 0 only runs no attack at all, the large-epsilon one included
    big_check = checks and not (aa and eps == [0.0])
    extra = [big] if big_check and big not in eps else []

    pgd_spec = _SPECS[spec.pgd] if checks and spec.pgd else None
    positive = sum(e > 0 for e in eps)
    n_batches = -(-len(data) // batch_size)
    if spec.minimizing:
        runs = 1
    elif aa:  # one event per component and batch, so the bar moves while a slow ensemble runs
        runs = sum(len(AUTOATTACK_COMPONENTS) if e > 0 else 1 for e in eps + extra)
    else:
        runs = len(eps) + len(extra)
    runs += positive if reference else 0
    runs += positive if pgd_spec else 0
    total, done = n_batches * runs, 0
    emit(on_event, "start", stage, 0, total)

    def tick():
        nonlocal done
        done += 1
        emit(on_event, "epoch", stage, done, total)

    clean, correct, ref_correct, pgd_correct, norms = [], [], [], [], []
    after = [[0] * len(AUTOATTACK_COMPONENTS) for _ in eps]  # AutoAttack: still correct after each component
    with _attacking(model, device) as (fmodel, dev):
        if aa:
            main = _AutoAttack(model, spec.norm, info.num_classes, info.input_shape, dev)
        else:
            main = _build(spec.name, steps, step_size)
        ref = _build(reference.name, 1, None) if reference else None
        pgd_attack = _build(pgd_spec.name, pgd_spec.default_steps, None) if pgd_spec else None
        for b, i in enumerate(range(0, len(data), batch_size)):
            x, y = data.x[i:i + batch_size].to(dev), data.y[i:i + batch_size].to(dev)
            with torch.no_grad():
                logits = model(x)  # clean, through plain torch: the epsilon-zero check's reference
            _check_finite(logits, b)
            ok = logits.argmax(1) == y
            clean.append(ok.cpu())
            if spec.minimizing:
                c, nm = _minimizing(fmodel, main, spec, x, y, eps + extra, ok)
                correct.append(c.cpu())
                norms.append(nm.cpu())
                tick()
            elif aa:
                rows = []
                for j, e in enumerate(eps + extra):
                    if e == 0:
                        rows.append(ok)
                        counts = [int(ok.sum())] * len(AUTOATTACK_COMPONENTS)
                        tick()
                    else:
                        _, c, counts = main(x, y, e, seed, b, done=tick)
                        rows.append(c)
                    if j < len(eps):
                        after[j] = [a + k for a, k in zip(after[j], counts)]
                correct.append(torch.stack(rows).cpu())
            else:
                rows = []
                for e in eps + extra:
                    rows.append(_fixed(fmodel, main, x, y, e, seed, b, dev))
                    tick()
                correct.append(torch.stack(rows).cpu())
            for attack_, out in ((ref, ref_correct), (pgd_attack, pgd_correct)):
                if attack_ is not None:
                    rows = []
                    for e in eps:
                        if e > 0:
                            rows.append(_fixed(fmodel, attack_, x, y, e, seed, b, dev))
                            tick()
                    out.append(torch.stack(rows).cpu() if rows else torch.zeros(0, len(x), dtype=torch.bool))

    clean_ok = torch.cat(clean)
    all_correct = torch.cat(correct, dim=1)  # (epsilons + extra, N)
    sweep, big_row = all_correct[:len(eps)], (all_correct[len(eps):] if extra else None)
    labels = data.y.cpu()
    acc = [_fraction(r) for r in sweep]
    result = {
        "attack": spec.name, "norm": spec.norm, "epsilons": eps, "accuracy": acc,
        "clean_accuracy": _fraction(clean_ok), "steps": steps,
        "step_size": None if step_size is None else float(step_size), "samples": len(data), "seed": seed,
        "batch_size": batch_size, "classes": list(info.classes) or [str(c) for c in range(info.num_classes)],
        "class_counts": torch.bincount(labels, minlength=info.num_classes).tolist(),
        "per_class_recall": {"clean": per_class_recall(clean_ok, labels, info.num_classes),
                             "by_epsilon": [per_class_recall(r, labels, info.num_classes) for r in sweep]},
        "norms": _plain_norms(torch.cat(norms)) if norms else None,
        "checks": [], "warnings": [], "format": FORMAT, "package": package_info(spec.package),
        "autoattack": None if not aa else {
            "version": "standard", "components": list(AUTOATTACK_COMPONENTS),
            "settings": {"steps": AUTOATTACK_STEPS, "restarts": 1, "target_classes": info.num_classes - 1,
                         "square_queries": SQUARE_QUERIES, "square_p_init": 0.8, "apgd_rho": 0.75},
            "accuracy_after": {name: [a[k] / len(data) for a in after]
                               for k, name in enumerate(AUTOATTACK_COMPONENTS)}},
    }
    if checks:
        if not big_check:
            big_acc = None
        elif big in eps:
            big_acc = acc[eps.index(big)]
        else:
            big_acc = _fraction(big_row[0])
        ref_acc = None
        if reference:
            ref_rows = torch.cat(ref_correct, dim=1)
            ref_acc = [_fraction(r) for r in ref_rows]
        pgd_acc = None
        if pgd_spec:
            pgd_acc = [_fraction(r) for r in torch.cat(pgd_correct, dim=1)]
        # Sample by sample, not by count: a noisy model can land on the same count by chance.
        agrees = torch.equal(clean_ok.bool(), sweep[0].bool()) if eps[0] == 0 else True
        result["checks"] = _checks(result, info.num_classes, big, big_acc, reference, ref_acc, agrees=agrees,
                                   pgd=pgd_spec.name if pgd_spec else None, pgd_acc=pgd_acc)
        result["warnings"] = [c["message"] for c in result["checks"] if c["passed"] is False]
        if warn:
            for message in result["warnings"]:
                warnings.warn(message, RobustnessWarning, stacklevel=2)
    emit(on_event, "end", stage, total, total)
    result["seconds"] = time.perf_counter() - t0
    return result


def _check_finite(logits: torch.Tensor, batch: int) -> None:
    bad = int((~torch.isfinite(logits)).any(dim=1).sum())
    if bad:
        raise ModelOutputError(f"the model's logits are not finite (NaN or infinite) for {bad} of {len(logits)} "
                               f"samples in batch {batch}: its accuracy, robust or clean, is not defined")


def _fraction(correct: torch.Tensor) -> float:
    return int(correct.sum()) / len(correct)


def per_class_recall(correct: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list:
    """``recall[c] = #(correct and label c) / #(label c)``; None for a class without samples.

    Weighted by the class counts, the recalls sum to the overall accuracy.
    """
    counts = torch.bincount(labels, minlength=num_classes)
    hits = torch.bincount(labels[correct.bool()], minlength=num_classes)
    return [float(h) / int(n) if n else None for h, n in zip(hits, counts)]


def _plain_norms(norms: torch.Tensor) -> list:
    return [None if math.isinf(v) else round(v, 7) for v in norms.tolist()]


def _checks(result: dict, num_classes: int, big: float, big_acc: float, reference, ref_acc,
            agrees: bool = True, pgd: Optional[str] = None, pgd_acc: Optional[list] = None) -> list[dict]:
    eps, acc, name = result["epsilons"], result["accuracy"], result["attack"]
    tol = max(TOLERANCE, 1.0 / result["samples"])  # forgive one sample on small evaluations
    out = []

    same = acc[0] == result["clean_accuracy"] and agrees
    out.append({"name": "epsilon-zero", "passed": same,
                "message": "accuracy at epsilon 0 equals the clean accuracy" if same else
                f"accuracy at epsilon 0 ({acc[0]:.4f}, sample by sample) differs from the clean accuracy "
                f"({result['clean_accuracy']:.4f}): the model's predictions are not deterministic"})

    rises = [(eps[i], eps[i + 1], acc[i], acc[i + 1]) for i in range(len(eps) - 1) if acc[i + 1] > acc[i] + tol]
    out.append({"name": "monotone", "passed": not rises,
                "message": "accuracy never rises with epsilon" if not rises else
                "; ".join(f"{name} accuracy rises from {a:.4f} at epsilon {e0:g} to {b:.4f} at {e1:g}"
                          for e0, e1, a, b in rises) + ": a larger budget cannot help the model, so the attack "
                "is unreliable here (too few steps, or masked gradients) and robustness is overestimated"})

    if reference is None:
        out.append({"name": "stronger-than-fgsm", "passed": None,
                    "message": f"not applicable to {name}"})
    else:
        pos = [i for i, e in enumerate(eps) if e > 0]
        weaker = [(eps[i], acc[i], r) for i, r in zip(pos, ref_acc) if acc[i] > r + tol]
        label = reference.name.upper()
        out.append({"name": "stronger-than-fgsm", "passed": not weaker, "reference": reference.name,
                    "reference_accuracy": [acc[0]] + ref_acc,
                    "message": f"{name} is at least as strong as {label} at every epsilon" if not weaker else
                    "; ".join(f"{name} leaves {a:.4f} accuracy at epsilon {e:g} but {label} only {r:.4f}"
                              for e, a, r in weaker) + ": a multi-step attack should not be weaker, so it has not "
                    "converged (try more steps) or gradients are masked, and robustness is overestimated"})

    chance = 1.0 / num_classes
    if big_acc is None:
        out.append({"name": "large-epsilon", "passed": None, "epsilon": big, "accuracy": None, "chance": chance,
                    "message": "not applicable: only epsilon 0 was asked for, so no attack ran"})
    else:
        ok = big_acc <= chance + CHANCE_MARGIN
        out.append({"name": "large-epsilon", "passed": ok, "epsilon": big, "accuracy": big_acc, "chance": chance,
                    "message": f"at epsilon {big:g} accuracy falls to {big_acc:.4f} (chance {chance:.2f})" if ok else
                    f"at epsilon {big:g}, where no classifier can be robust, {name} still leaves {big_acc:.4f} "
                    f"accuracy (chance {chance:.2f}): gradients are probably masked"})

    if pgd is not None:
        out.append(pgd_vs_autoattack(eps, acc, [acc[0]] + pgd_acc, result["samples"], pgd))
    return out


def pgd_vs_autoattack(epsilons, autoattack_accuracy, pgd_accuracy, samples: int, pgd: str = "pgd") -> dict:
    """The ``pgd-vs-autoattack`` check: PGD's robust accuracy (on the same samples) is not above
    AutoAttack's by more than :data:`PGD_GAP` (or one sample) at any epsilon."""
    gap = max(PGD_GAP, 1.0 / samples)
    if not any(e > 0 for e in epsilons):
        return {"name": "pgd-vs-autoattack", "passed": None, "pgd": pgd, "pgd_accuracy": list(pgd_accuracy),
                "tolerance": gap, "message": "not applicable: no epsilon > 0 was asked for"}
    over = [(e, p, a) for e, a, p in zip(epsilons, autoattack_accuracy, pgd_accuracy) if e > 0 and p > a + gap]
    worst = max((p - a for e, a, p in zip(epsilons, autoattack_accuracy, pgd_accuracy) if e > 0), default=0.0)
    label = pgd.upper()
    return {"name": "pgd-vs-autoattack", "passed": not over, "pgd": pgd, "pgd_steps": _SPECS[pgd].default_steps,
            "pgd_accuracy": list(pgd_accuracy), "tolerance": gap, "largest_gap": worst,
            "message": f"{label}-{_SPECS[pgd].default_steps} is within {gap:.2f} of AutoAttack at every epsilon "
            f"(largest gap {worst:+.4f})" if not over else
            "; ".join(f"{label}-{_SPECS[pgd].default_steps} leaves {p:.4f} accuracy at epsilon {e:g} but "
                      f"AutoAttack only {a:.4f}" for e, p, a in over) +
            f": more than {gap:.2f} apart, so PGD overestimates robustness here (too few steps, or masked "
            "gradients)"}


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
    spec = _spec(attack)
    if not spec.minimizing:
        minimizing = ", ".join(n for n, s in _SPECS.items() if s.minimizing)
        raise ConfigError(f"a security curve needs a minimum-norm attack ({minimizing}), not '{attack}'")
    r = evaluate(model, data, attack, [0.0], steps=steps, samples=samples, seed=seed, batch_size=batch_size,
                 device=device, checks=False, on_event=on_event, warn=False)
    norms = r["norms"]
    grid = [0.0] + sorted({v for v in norms if v is not None and v > 0})
    correct = [v for v in norms if v != 0]
    return {"attack": spec.name, "norm": spec.norm, "steps": r["steps"], "samples": r["samples"], "seed": seed,
            "clean_accuracy": r["clean_accuracy"], "norms": norms,
            "labels": _select(data, samples, seed).y.cpu().tolist(),
            "found": (sum(v is not None for v in correct) / len(correct)) if correct else 1.0,
            "epsilons": grid, "accuracy": curve_at(norms, grid), "seconds": r["seconds"]}


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
    spec = _spec(attack)
    steps = _resolve_steps(spec, steps, step_size)
    if epsilon is None:
        if not spec.minimizing:
            raise ConfigError(f"'{attack}' needs an epsilon; only minimum-norm attacks run without one")
    else:
        epsilon = check_epsilons([epsilon])[-1]
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and len(x) == len(y) and len(x) > 0):
        raise ConfigError("x and y must be non-empty tensors of the same length")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ConfigError("inputs must lie in [0, 1]")
    with _attacking(model, device) as (fmodel, dev):
        x, y = x.to(dev), y.long().to(dev)
        if epsilon == 0:
            xa = x.clone()
        elif spec.package == "torchattacks":
            with torch.no_grad():
                classes = model(x[:1]).shape[-1]  # the targets of APGD-T and FAB-T: every other class
            xa, _, _ = _AutoAttack(model, spec.norm, classes, x.shape[1:], dev)(x, y, epsilon, seed, 0)
        else:
            with _seeded(seed, 0, dev):
                raw, clipped, _ = _build(spec.name, steps, step_size)(fmodel, x, y, epsilons=epsilon)
            xa = raw if epsilon is None else clipped
        with torch.no_grad():
            p0, p1 = model(x).softmax(1), model(xa).softmax(1)
    c0, c1 = p0.max(1), p1.max(1)
    return {"attack": spec.name, "epsilon": epsilon, "steps": steps, "x": x.cpu(), "x_adv": xa.detach().cpu(),
            "y": y.cpu(), "pred_clean": c0.indices.cpu(), "pred_adv": c1.indices.cpu(),
            "confidence_clean": c0.values.cpu(), "confidence_adv": c1.values.cpu(),
            "success": (c1.indices != y).cpu(), "norm": _distance(spec.norm, x, xa).cpu()}


def evaluate_pair(teacher: nn.Module, pruned: nn.Module, data: ArrayDataset, attack: str = "pgd",
                  epsilons=DEFAULT_EPSILONS, **kwargs) -> dict:
    """:func:`evaluate` for the dense teacher and the pruned model on the same samples with the
    same seed (so the same random starts): ``{"teacher": result, "pruned": result}``."""
    samples, seed = kwargs.pop("samples", None), kwargs.get("seed", 0)
    data = _select(data, samples, seed)
    return {"teacher": evaluate(teacher, data, attack, epsilons, **kwargs),
            "pruned": evaluate(pruned, data, attack, epsilons, **kwargs)}
