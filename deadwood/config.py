"""Every hyperparameter, as frozen dataclasses with validation, and the check a run starts with.

The CLI, the app and the notebooks build a :class:`RunConfig`; the engine only
ever reads it. Change one with ``dataclasses.replace`` (or :func:`with_updates`
for dotted names such as ``"deadwooding.dual_step"``).

Building a configuration checks its values only: types, ranges, choices, and names the registries
know. It reads no file and builds no network, so it is cheap and can be built for data that is not
there (yet). :func:`resolve` is the one place that looks at what the values point to (the image
folder, the network on that data, the teacher checkpoint), and everything that starts a run calls it
before any work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .errors import ConfigError
from . import fingerprint


def _positive(name: str, value, allow_zero: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _below_one(name: str, value, why: str = ""):
    """A fraction in [0, 1): a momentum, a lowest keep rate."""
    if not (_number(value) and 0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1){why}, got {value!r}")


def _whole(name: str, value):
    """A whole number >= 1 (not a bool)."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")


def _own_epochs(name: str, value, why: str = "or None: the solve's epochs"):
    """A method's own-stage epochs: None (the solve's, under the budget protocol) or a whole number >= 1."""
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1 ({why}), got {value!r}")


def _choice(name: str, value, choices):
    if value not in choices:
        raise ConfigError(f"unknown {name} '{value}'; choose one of: {', '.join(choices)}")


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
        _positive("teacher.epochs", self.epochs, allow_zero=True)
        _positive("teacher.lr", self.lr)
        _choice("teacher attack", self.attack, ("none", "fgsm", "pgd"))
        if self.epsilon is not None:
            _positive("teacher.epsilon", self.epsilon, allow_zero=True)
        _positive("teacher.pgd_steps", self.pgd_steps)
        _positive("teacher.weight_decay", self.weight_decay, allow_zero=True)


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
        from .methods.deadwooding.multipliers import RULES

        _positive("deadwooding.epochs", self.epochs)
        _positive("deadwooding.lr", self.lr)
        _choice("dual update", self.dual_update, RULES)
        _positive("deadwooding.dual_step", self.dual_step)
        _positive("deadwooding.dual_every", self.dual_every, allow_zero=True)
        _positive("deadwooding.penalty", self.penalty)
        _positive("deadwooding.kp", self.kp, allow_zero=True)
        for n in ("delta_rep", "delta_kd", "rho"):
            _positive(f"deadwooding.{n}", getattr(self, n), allow_zero=True)
        _positive("deadwooding.tau", self.tau)
        _choice("deadwooding attack", self.attack, ("fgsm", "pgd"))
        _positive("deadwooding.pgd_steps", self.pgd_steps)
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
        _choice("cut granularity", self.granularity, GRANULARITIES)
        for n in ("block_rows", "block_cols", "bound_samples"):
            v = getattr(self, n)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"cut.{n} must be a whole number >= 1, got {v!r}")
        _choice("cut allocation", self.allocation, ALLOCATIONS)


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
        _own_epochs("hydra.epochs", self.epochs)
        _positive("hydra.lr", self.lr)
        _below_one("hydra.momentum", self.momentum)
        _positive("hydra.weight_decay", self.weight_decay, allow_zero=True)
        _choice("hydra.schedule", self.schedule, HYDRA_SCHEDULES)
        _positive("hydra.beta", self.beta, allow_zero=True)
        _whole("hydra.attack_steps", self.attack_steps)
        if not (_number(self.step_fraction) and 0 < self.step_fraction <= 1):
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
        _own_epochs("hydra_adam.epochs", self.epochs)
        _positive("hydra_adam.lr", self.lr)


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
        _own_epochs("gmp.epochs", self.epochs, "a stage of 0 epochs cannot prune to κ")
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
            _positive("gmp.lr", self.lr)


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
        _own_epochs("harp.epochs", self.epochs)
        _positive("harp.lr", self.lr)
        _below_one("harp.momentum", self.momentum)
        _positive("harp.weight_decay", self.weight_decay, allow_zero=True)
        _positive("harp.gamma", self.gamma)
        _below_one("harp.alpha", self.alpha, " (a layer's lowest keep rate is alpha · (1 - sparsity))")
        _choice("harp loss", self.loss, HARP_LOSSES)
        _positive("harp.beta", self.beta, allow_zero=True)
        _whole("harp.pgd_steps", self.pgd_steps)
        _positive("harp.step_size", self.step_size)


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
        _positive("finetune.epochs", self.epochs, allow_zero=True)
        _positive("finetune.lr", self.lr)
        if not 0 <= self.alpha_kd <= 1:
            raise ConfigError(f"finetune.alpha_kd must be in [0, 1], got {self.alpha_kd!r}")
        _positive("finetune.tau", self.tau)
        _choice("finetune attack", self.attack, ("none", "fgsm", "pgd"))
        _positive("finetune.pgd_steps", self.pgd_steps)


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
            _positive("every evaluation epsilon", e, allow_zero=True)
        _positive("evaluation.steps", self.steps)
        if self.samples is not None:
            _positive("evaluation.samples", self.samples)


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


@dataclass(frozen=True)
class RunConfig:
    """One run: a dataset, a model, a pruning method at a sparsity, judged at an epsilon."""

    dataset: str = "digits"
    model: str = "mlp"
    method: str = "deadwooding"
    sparsity: float = 0.95  # κ: fraction of prunable weights set to zero
    epsilon: float = 0.1  # L-inf attack budget on [0, 1] inputs
    seed: int = 0
    batch_size: int = 64
    min_keep: int = 8  # collapse guard: weights a layer keeps at least
    device: str = "auto"
    amp: bool = False  # bfloat16 autocast on CUDA
    budget: str = "matched"  # epochs after the teacher: 'matched' (Deadwooding's) or 'finetune' (deadwood.methods.budget)
    data_dir: Optional[str] = None
    download: bool = False  # let torchvision fetch missing files (needs network)
    image_size: int = 32  # dataset 'folder': images are resized to image_size x image_size
    teacher_checkpoint: Optional[str] = None  # the user's trained weights: Stage 0 starts from them
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    deadwooding: DeadwoodingConfig = field(default_factory=DeadwoodingConfig)
    cut: CutConfig = field(default_factory=CutConfig)
    hydra: HydraConfig = field(default_factory=HydraConfig)
    hydra_adam: HydraAdamConfig = field(default_factory=HydraAdamConfig)
    gmp: GmpConfig = field(default_factory=GmpConfig)
    harp: HarpConfig = field(default_factory=HarpConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    prune_layers: LayersConfig = field(default_factory=LayersConfig)

    # Fields that say where or on what a run happens, not what it computes. The data and the
    # checkpoint they point at count by their content instead (data_identity).
    LOCATION_FIELDS = ("device", "data_dir", "download", "teacher_checkpoint")

    def __post_init__(self):
        self.validate()

    def validate(self) -> "RunConfig":
        from .data import registry as datasets
        from .device import DEVICES
        from .methods import cut_methods, get_method
        from .methods.budget import BUDGETS, plan
        from .models import registry as models

        if not (isinstance(self.image_size, int) and not isinstance(self.image_size, bool)
                and 4 <= self.image_size <= 1024):
            raise ConfigError(f"image_size must be a whole number from 4 to 1024, got {self.image_size!r}")
        datasets.lookup(self.dataset).known(self.dataset)
        models.lookup(self.model).known(self.model)
        get_method(self.method)  # names the unknown method and the known ones
        if not (isinstance(self.sparsity, (int, float)) and 0 <= self.sparsity < 1):
            raise ConfigError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon >= 0):
            raise ConfigError(f"epsilon must be a number >= 0, got {self.epsilon!r}")
        _positive("batch_size", self.batch_size)
        _positive("min_keep", self.min_keep, allow_zero=True)
        _choice("device", self.device, DEVICES)
        _choice("budget", self.budget, BUDGETS)
        for section in _SUBCONFIGS:  # every section, a new method's own included
            getattr(self, section).validate()
        plan(self)  # a budget the method cannot spend fails here
        if self.cut != CutConfig() and self.method not in cut_methods():
            raise ConfigError(f"cut options apply to the {' and '.join(cut_methods())} methods only, "
                              f"not '{self.method}'")
        if self.cut.allocation == "bound" and self.model != "mlp":
            raise ConfigError(f"cut allocation 'bound' needs model 'mlp' (the region bound covers fully "
                              f"connected ReLU layers), not '{self.model}'")
        return self

    def data_info(self):
        """The :class:`deadwood.data.registry.DatasetInfo` of this run's data (a folder is scanned, not read)."""
        from .data.datasets import dataset_info

        return dataset_info(self.dataset, self.data_dir, self.image_size)

    def data_identity(self) -> dict:
        """What the data and the teacher's starting weights are, by content: a digest of the data
        actually loaded (deadwood.data.datasets.data_digest; never only a name or a folder path) and of
        the checkpoint file. Two folders holding the same images share cached runs; two
        different folders of the same name do not."""
        from .data.digest import file_digest
        from .data.datasets import data_digest

        ident = {"data": data_digest(self.dataset, self.data_dir, self.seed, self.image_size)}
        if self.teacher_checkpoint is not None:
            ident["checkpoint"] = file_digest(self.teacher_checkpoint)
        return ident

    @property
    def teacher_epsilon(self) -> float:
        return self.epsilon if self.teacher.epsilon is None else self.teacher.epsilon

    @property
    def eval_epsilons(self) -> list[float]:
        """The curve's epsilons: the configured ones plus 0 and the run's epsilon, sorted."""
        return sorted({0.0, float(self.epsilon), *map(float, self.evaluation.epsilons)})

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        subs = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in d.items():
            if k not in subs:
                raise ConfigError(f"unknown configuration field '{k}'")
            sub_cls = _SUBCONFIGS.get(k)
            if sub_cls is not None:
                known = {f.name for f in fields(sub_cls)}
                unknown = set(v) - known
                if unknown:
                    raise ConfigError(f"unknown field(s) {sorted(unknown)} in '{k}'")
                v = sub_cls(**{kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()})
            kwargs[k] = v
        return cls(**kwargs)

    def key(self) -> str:
        """A hash of everything that decides the results (not the device or data folder), the
        engine code that computes them included (:mod:`deadwood.fingerprint`).

        A method's own section (``deadwooding``, ``hydra``, ``hydra_adam``: ``Method.section`` in the registry)
        only counts for that method, so tuning Deadwooding leaves every baseline's cached run
        valid. The budget counts by the epochs it gives each stage, so a method that both
        protocols train alike (Deadwooding) keeps one key."""
        from .methods import get_method, method_sections
        from .methods.budget import plan

        d = self.to_dict()
        d["budget"] = plan(self).by_stage()
        for f in self.LOCATION_FIELDS:
            d.pop(f)
        own = get_method(self.method).section
        for section in method_sections():
            if section != own:
                d.pop(section)
        return _digest({**d, **self.data_identity(), "code": fingerprint.code_fingerprint()})

    def solve_key(self) -> str:
        """A hash of what decides Deadwooding's Stage 1 solve: the teacher, the ``deadwooding``
        section, epsilon, seed, batch size, the pruned layers (never the sparsity, the cut, the fine-tune or the
        evaluation; see deadwood.storage.solves)."""
        return _digest({"teacher": self.teacher_key(), "deadwooding": dataclasses.asdict(self.deadwooding),
                        "epsilon": self.epsilon, "seed": self.seed, "batch_size": self.batch_size,
                        "amp": self.amp, "prune_layers": dataclasses.asdict(self.prune_layers)})

    def stores_solve(self) -> bool:
        """Whether a run of this configuration reads and writes a stored solve (deadwood.storage.solves):
        its method's Stage 1 ignores κ (``Method.stores_solve``), and ``finetune.keep_dual`` does not
        carry that stage's open multipliers on into the fine-tune."""
        from .methods import get_method

        return get_method(self.method).stores_solve and not self.finetune.keep_dual

    def teacher_key(self) -> str:
        """A hash of what decides the teacher: data, model, its starting weights, seed, teacher training."""
        return _digest({"code": fingerprint.code_fingerprint(), "dataset": self.dataset,
                        "model": self.model, "seed": self.seed, "batch_size": self.batch_size, "amp": self.amp,
                        "epsilon": self.teacher_epsilon, "teacher": dataclasses.asdict(self.teacher),
                        "image_size": self.image_size, **self.data_identity()})


def resolve(config: RunConfig) -> RunConfig:
    """``config``, checked as a run of it starts, before any work; the first problem is raised.

    In order: its values (:meth:`RunConfig.validate`); its data's shape and classes (an image folder
    is scanned; no image is read); its model on that data (a torchvision network is built and probed,
    once per process and input); its teacher checkpoint loaded into that model (once per process and
    file content). :func:`deadwood.run`, :func:`deadwood.pipeline.prepare`, :func:`deadwood.prune`, the
    benchmark and the app call it; the CLI reaches it through them.

    The cache keys do not come from here: :meth:`RunConfig.key` digests the data when it is asked,
    which the cache also does for configurations no run starts (a record's, a look-up's)."""
    from .data.datasets import dataset_info
    from .models.checkpoint import check_checkpoint
    from .models.registry import check_fits

    config = config.validate()
    info = dataset_info(config.dataset, config.data_dir, config.image_size)
    check_fits(config.model, info)
    if config.teacher_checkpoint is not None:
        check_checkpoint(config.model, info, config.teacher_checkpoint)
    return config


_SUBCONFIGS = {"teacher": TeacherConfig, "deadwooding": DeadwoodingConfig, "cut": CutConfig,
               "hydra": HydraConfig, "hydra_adam": HydraAdamConfig, "gmp": GmpConfig, "harp": HarpConfig,
               "finetune": FinetuneConfig, "evaluation": EvalConfig,
               "prune_layers": LayersConfig}


def _digest(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_updates(config: RunConfig, **updates) -> RunConfig:
    """A copy of ``config`` with top-level or dotted (``"finetune.epochs"``) fields replaced."""
    top: dict[str, Any] = {}
    nested: dict[str, dict] = {}
    for k, v in updates.items():
        head, _, rest = k.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = v
        else:
            top[k] = v
    for head, vals in nested.items():
        if head not in _SUBCONFIGS:
            raise ConfigError(f"unknown configuration section '{head}'")
        try:
            top[head] = dataclasses.replace(getattr(config, head), **vals)
        except TypeError as e:
            raise ConfigError(f"unknown field in '{head}': {e}") from None
    try:
        return dataclasses.replace(config, **top)
    except TypeError as e:
        raise ConfigError(str(e)) from None
