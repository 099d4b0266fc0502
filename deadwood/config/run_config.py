"""One run's configuration (:class:`RunConfig`) and its cache keys, the one check a run starts with
(:func:`resolve`), and :func:`with_updates`."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from ..errors import ConfigError
from .. import fingerprint
from .sections import (SECTIONS, CutConfig, DeadwoodingConfig, EvalConfig, FinetuneConfig, GmpConfig, HarpConfig,
                       HydraAdamConfig, HydraConfig, LayersConfig, TeacherConfig)
from .validation import choice, positive


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
        from ..data import registry as datasets
        from ..device import DEVICES
        from ..methods import cut_methods, get_method
        from ..methods.budget import BUDGETS, plan
        from ..models import registry as models

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
        positive("batch_size", self.batch_size)
        positive("min_keep", self.min_keep, allow_zero=True)
        choice("device", self.device, DEVICES)
        choice("budget", self.budget, BUDGETS)
        for section in SECTIONS:  # every section, a new method's own included
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
        from ..data.datasets import dataset_info

        return dataset_info(self.dataset, self.data_dir, self.image_size)

    def data_identity(self) -> dict:
        """What the data and the teacher's starting weights are, by content: a digest of the data
        actually loaded (deadwood.data.datasets.data_digest; never only a name or a folder path) and of
        the checkpoint file. Two folders holding the same images share cached runs; two
        different folders of the same name do not."""
        from ..data.digest import file_digest
        from ..data.datasets import data_digest

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
            sub_cls = SECTIONS.get(k)
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
        from ..methods import get_method, method_sections
        from ..methods.budget import plan

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
        from ..methods import get_method

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
    from ..data.datasets import dataset_info
    from ..models.checkpoint import check_checkpoint
    from ..models.registry import check_fits

    config = config.validate()
    info = dataset_info(config.dataset, config.data_dir, config.image_size)
    check_fits(config.model, info)
    if config.teacher_checkpoint is not None:
        check_checkpoint(config.model, info, config.teacher_checkpoint)
    return config



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
        if head not in SECTIONS:
            raise ConfigError(f"unknown configuration section '{head}'")
        try:
            top[head] = dataclasses.replace(getattr(config, head), **vals)
        except TypeError as e:
            raise ConfigError(f"unknown field in '{head}': {e}") from None
    try:
        return dataclasses.replace(config, **top)
    except TypeError as e:
        raise ConfigError(str(e)) from None
