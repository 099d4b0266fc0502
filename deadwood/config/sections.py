"""The sections of a :class:`deadwood.config.RunConfig`: one frozen dataclass per stage and per method.

Each section checks its own values in ``validate`` (with the shared checks of
:mod:`deadwood.config.validation`); :data:`SECTIONS` names them by their field on ``RunConfig``,
which validates, reads (``from_dict``) and updates (``with_updates``) every section through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError
from .validation import below_one, choice, number, own_epochs, positive, whole


@dataclass(frozen=True)
class TeacherConfig:
    """Stage 0: the dense teacher every method prunes."""

    epochs: int = 30
    lr: float = 1e-3
    attack: str = "fgsm"  # 'none' trains naturally; 'fgsm' / 'pgd' adversarially
    epsilon: Optional[float] = None  # None: the run's epsilon
    pgd_steps: int = 7
    weight_decay: float = 0.0

    def validate(self):
        positive("teacher.epochs", self.epochs, allow_zero=True)
        positive("teacher.lr", self.lr)
        choice("teacher attack", self.attack, ("none", "fgsm", "pgd"))
        if self.epsilon is not None:
            positive("teacher.epsilon", self.epsilon, allow_zero=True)
        positive("teacher.pgd_steps", self.pgd_steps)
        positive("teacher.weight_decay", self.weight_decay, allow_zero=True)


@dataclass(frozen=True)
class DeadwoodingConfig:
    """Stage 1: the Lagrangian-dual solve (see docs/method.md for every symbol)."""

    epochs: int = 15
    lr: float = 2e-3  # primal Adam step
    dual_update: str = "dual-ascent"  # see deadwood.methods.deadwooding.multipliers.RULES
    dual_step: float = 0.05  # s, per epoch (docs/method.md, defaults, says why; Fioretto et al. used 0.02-0.3)
    dual_every: int = 23  # k: dual updates at most every k primal steps, s scaled to k (0: once per epoch)
    penalty: float = 1.0  # c of the augmented Lagrangian
    kp: float = 1.0  # proportional gain of nuPI
    delta_rep: float = 0.2  # δ_rep: tolerated relative change of each layer's output (squared-norm ratio)
    delta_kd: float = 0.01  # δ_kd: tolerated KL to the teacher
    rho: float = 0.1  # ρ: tolerated relative rise of the adversarial loss
    tau: float = 4.0  # τ: distillation temperature
    attack: str = "fgsm"  # a_ε inside g_rob
    pgd_steps: int = 5
    layer_normalize: bool = True  # divide each layer's L1 term by its initial mean |w|
    # Test samples of the one-shot profile at every κ, at most: deadwood.pruning.sparsity_profile.profile_samples
    # lowers it so the profile attacks (2 networks × cuts × samples) at most 1.6 × the solve's images
    # (epochs × train images), which keeps it under the solve's time; 0: no profile.
    profile_samples: int = 500

    def validate(self):
        from ..methods.deadwooding.multipliers import RULES

        positive("deadwooding.epochs", self.epochs)
        positive("deadwooding.lr", self.lr)
        choice("dual update", self.dual_update, RULES)
        positive("deadwooding.dual_step", self.dual_step)
        positive("deadwooding.dual_every", self.dual_every, allow_zero=True)
        positive("deadwooding.penalty", self.penalty)
        positive("deadwooding.kp", self.kp, allow_zero=True)
        for n in ("delta_rep", "delta_kd", "rho"):
            positive(f"deadwooding.{n}", getattr(self, n), allow_zero=True)
        positive("deadwooding.tau", self.tau)
        choice("deadwooding attack", self.attack, ("fgsm", "pgd"))
        positive("deadwooding.pgd_steps", self.pgd_steps)
        if not (isinstance(self.profile_samples, int) and not isinstance(self.profile_samples, bool)
                and self.profile_samples >= 0):
            raise ConfigError(f"deadwooding.profile_samples must be a whole number >= 0, got {self.profile_samples!r}")


GRANULARITIES = ("unstructured", "bcr")
HYDRA_SCHEDULES = ("cosine", "step", "constant")  # the reference's utils/schedules.py
HARP_LOSSES = ("pgd", "trades")
ALLOCATIONS = ("global", "uniform", "bound")


@dataclass(frozen=True)
class CutConfig:
    """Stage 2 of the magnitude and Deadwooding methods: how the lowest |w| are cut.

    ``granularity`` 'bcr' cuts whole rows and columns inside ``block_rows`` x ``block_cols``
    tiles of each weight matrix (GRIM's block-based column-row pruning; see deadwood.pruning.bcr).
    ``allocation`` sets the per-layer sparsity: 'global' one threshold over all layers,
    'uniform' the same fraction per layer, 'bound' the fractions that maximise Cai et al.'s
    bound on linear regions (mlp only; see deadwood.pruning.region_bound).
    """

    granularity: str = "unstructured"
    block_rows: int = 8
    block_cols: int = 8
    allocation: str = "global"
    bound_samples: int = 16  # random sparse matrices per layer and density for the rank probabilities

    def validate(self):
        choice("cut granularity", self.granularity, GRANULARITIES)
        for n in ("block_rows", "block_cols", "bound_samples"):
            v = getattr(self, n)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"cut.{n} must be a whole number >= 1, got {v!r}")
        choice("cut allocation", self.allocation, ALLOCATIONS)


@dataclass(frozen=True)
class HydraConfig:
    """HYDRA's pruning phase (Sehwag et al. 2020), with the reference's defaults (inspire-group/hydra:
    args.py, configs/configs.yml): weights frozen, importance scores trained by SGD on the TRADES loss."""

    epochs: Optional[int] = None  # None: the solve's epochs (deadwooding.epochs); see deadwood.methods.budget
    lr: float = 0.1  # SGD on the scores, the schedule's peak
    momentum: float = 0.9
    weight_decay: float = 1e-4  # on the scores (and on BatchNorm's affine parameters unless freeze_bn)
    schedule: str = "cosine"  # per-epoch learning rate: 'cosine' | 'step' | 'constant'
    beta: float = 6.0  # TRADES: weight of the KL between clean and adversarial outputs
    attack_steps: int = 10  # PGD steps of the TRADES attack (on the KL)
    step_fraction: float = 0.25  # its step size, as a fraction of the run's epsilon (the reference: 2/255 of 8/255)
    freeze_bn: bool = False  # the reference trains BatchNorm's weight and bias with the scores unless --freeze-bn

    def validate(self):
        own_epochs("hydra.epochs", self.epochs)
        positive("hydra.lr", self.lr)
        below_one("hydra.momentum", self.momentum)
        positive("hydra.weight_decay", self.weight_decay, allow_zero=True)
        choice("hydra.schedule", self.schedule, HYDRA_SCHEDULES)
        positive("hydra.beta", self.beta, allow_zero=True)
        whole("hydra.attack_steps", self.attack_steps)
        if not (number(self.step_fraction) and 0 < self.step_fraction <= 1):
            raise ConfigError(f"hydra.step_fraction must be in (0, 1] (the attack's step size over epsilon), "
                              f"got {self.step_fraction!r}")
        if not isinstance(self.freeze_bn, bool):
            raise ConfigError(f"hydra.freeze_bn must be true or false, got {self.freeze_bn!r}")


@dataclass(frozen=True)
class HydraAdamConfig:
    """``hydra-adam``, this project's earlier HYDRA variant: scores from ``|w|`` trained by Adam on the fine-tune
    attack's cross-entropy, ranked by ``s`` (deadwood.methods.hydra_adam)."""

    epochs: Optional[int] = None  # None: the solve's epochs (deadwooding.epochs); see deadwood.methods.budget
    lr: float = 0.01

    def validate(self):
        own_epochs("hydra_adam.epochs", self.epochs)
        positive("hydra_adam.lr", self.lr)


@dataclass(frozen=True)
class GmpConfig:
    """Gradual magnitude pruning (Zhu & Gupta 2017): a global magnitude mask tightens from 0 to κ on
    a cubic schedule while the student trains with the fine-tune's loss (deadwood.methods.gmp)."""

    epochs: Optional[int] = None  # None: the solve's epochs (deadwooding.epochs); see deadwood.methods.budget
    frequency: int = 10  # Δt: optimiser steps from one pruning step to the next
    start: float = 0.0  # t_0, the schedule's first step, as a fraction of the stage's steps
    end: float = 1.0  # the last pruning step falls at most here (fraction of the stage's steps)
    lr: Optional[float] = None  # None: the fine-tune's (finetune.lr), so the budget stays matched

    def validate(self):
        own_epochs("gmp.epochs", self.epochs, "a stage of 0 epochs cannot prune to κ")
        if not (isinstance(self.frequency, int) and not isinstance(self.frequency, bool) and self.frequency >= 1):
            raise ConfigError(f"gmp.frequency must be a whole number of steps >= 1, got {self.frequency!r}")
        for n in ("start", "end"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1):
                raise ConfigError(f"gmp.{n} must be a fraction of the stage in [0, 1], got {v!r}")
        if not self.start < self.end:
            raise ConfigError(f"gmp.end ({self.end}) must come after gmp.start ({self.start}): the schedule "
                              "needs room to reach κ")
        if self.lr is not None:
            positive("gmp.lr", self.lr)


@dataclass(frozen=True)
class HarpConfig:
    """HARP (Zhao & Wressnegger, ICLR 2023): importance scores and per-layer compression rates
    learned together on the adversarial loss, the budget κ as a rising penalty (deadwood.methods.harp).
    Defaults are the reference's (intellisec/harp, CIFAR-10 configuration and README command)."""

    epochs: Optional[int] = None  # None: the solve's epochs (deadwooding.epochs); see deadwood.methods.budget
    lr: float = 0.1  # SGD on scores and rates, cosine schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    gamma: float = 0.01  # γ: the penalty weight grows by γ each epoch until the budget is met, then stays
    alpha: float = 0.1  # a layer keeps at least alpha · (1 - κ) of its weights while rates are learned
    loss: str = "pgd"  # 'pgd': PGD adversarial training; 'trades': TRADES with beta
    beta: float = 6.0  # TRADES only
    pgd_steps: int = 10  # attack steps of the loss
    step_size: float = 0.25  # the attack's step, as a fraction of the run's epsilon (2/255 at 8/255)

    def validate(self):
        own_epochs("harp.epochs", self.epochs)
        positive("harp.lr", self.lr)
        below_one("harp.momentum", self.momentum)
        positive("harp.weight_decay", self.weight_decay, allow_zero=True)
        positive("harp.gamma", self.gamma)
        below_one("harp.alpha", self.alpha, " (a layer's lowest keep rate is alpha · (1 - sparsity))")
        choice("harp loss", self.loss, HARP_LOSSES)
        positive("harp.beta", self.beta, allow_zero=True)
        whole("harp.pgd_steps", self.pgd_steps)
        positive("harp.step_size", self.step_size)


@dataclass(frozen=True)
class FinetuneConfig:
    """Stage 3, shared by every method: distillation + adversarial training under the fixed mask."""

    epochs: int = 10
    lr: float = 1e-3
    alpha_kd: float = 0.5  # weight of the distillation term (0 switches it off)
    tau: float = 4.0
    attack: str = "fgsm"  # 'none' switches adversarial training off
    pgd_steps: int = 7
    keep_dual: bool = False  # deadwooding only: Stage 1's constraints and dual updates stay on

    def validate(self):
        positive("finetune.epochs", self.epochs, allow_zero=True)
        positive("finetune.lr", self.lr)
        if not 0 <= self.alpha_kd <= 1:
            raise ConfigError(f"finetune.alpha_kd must be in [0, 1], got {self.alpha_kd!r}")
        positive("finetune.tau", self.tau)
        choice("finetune attack", self.attack, ("none", "fgsm", "pgd"))
        positive("finetune.pgd_steps", self.pgd_steps)


@dataclass(frozen=True)
class EvalConfig:
    """The robustness curve written into every record."""

    epsilons: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
    steps: int = 10
    samples: Optional[int] = None  # None: the whole test split

    def validate(self):
        if not self.epsilons:
            raise ConfigError("evaluation needs at least one epsilon")
        for e in self.epsilons:
            positive("every evaluation epsilon", e, allow_zero=True)
        positive("evaluation.steps", self.steps)
        if self.samples is not None:
            positive("evaluation.samples", self.samples)


@dataclass(frozen=True)
class LayersConfig:
    """Which layers are pruned: the Linear and Conv2d layers whose module name matches a pattern
    of ``include`` and none of ``exclude`` (shell patterns: ``"features.*"``, ``"fc"``).
    The default prunes every Linear and Conv2d weight (see deadwood.pruning.masks.select_layers)."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def validate(self):
        for option in ("include", "exclude"):
            patterns = getattr(self, option)
            if not (isinstance(patterns, tuple) and all(isinstance(p, str) and p for p in patterns)):
                raise ConfigError(f"prune_layers.{option} must be a list of module-name patterns, got {patterns!r}")
        if not self.include:
            raise ConfigError("prune_layers.include needs at least one pattern ('*' for every layer)")



# Every section by its field on RunConfig: a new method's own section is one more entry.
SECTIONS = {"teacher": TeacherConfig, "deadwooding": DeadwoodingConfig, "cut": CutConfig,
               "hydra": HydraConfig, "hydra_adam": HydraAdamConfig, "gmp": GmpConfig, "harp": HarpConfig,
               "finetune": FinetuneConfig, "evaluation": EvalConfig,
               "prune_layers": LayersConfig}

