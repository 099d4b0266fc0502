"""The training budget after the teacher: how many epochs each stage of a run gets.

Two protocols (``RunConfig.budget``):

- ``matched`` (the default): every method spends as many epochs after the teacher as
  Deadwooding does, its solve plus its fine-tune (``deadwooding.epochs + finetune.epochs``),
  at the same batch size and with the same fine-tune learning rate. A method with a stage of
  its own (HYDRA's scores, GMP's gradual pruning, HARP's scores and rates) spends its
  section's ``epochs`` there (None: the solve's epochs) and fine-tunes for the rest; a method
  without one fine-tunes for the whole budget. Wang et al. 2023 ("Why is the state of neural
  network pruning so confusing?", setups S3.2/S4) ask for this much at least.
- ``finetune``: every method fine-tunes ``finetune.epochs``; a method's own stage spends its
  section's ``epochs`` on top (None: the solve's epochs). The older protocol, kept to
  compare against.

What differs per method is a registry fact: whether it has a stage of its own and which
configuration section holds that stage's ``epochs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError
from .registry import get_method

BUDGETS = ("matched", "finetune")


@dataclass(frozen=True)
class Plan:
    """The epochs of one run after its teacher."""

    protocol: str
    stage: Optional[str]  # the method's own stage (None: straight from the teacher to the cut)
    stage_epochs: int
    finetune_epochs: int

    @property
    def total(self) -> int:
        return self.stage_epochs + self.finetune_epochs

    def by_stage(self) -> dict:
        return {**({self.stage: self.stage_epochs} if self.stage else {}), "finetune": self.finetune_epochs}

    def describe(self) -> str:
        """One line for people: ``budget matched: 25 epochs after the teacher (gmp 15 + finetune 10)``."""
        return (f"budget {self.protocol}: {self.total} epochs after the teacher ("
                + " + ".join(f"{name} {n}" for name, n in self.by_stage().items()) + ")")

    def record(self, train_size: int, batch_size: int) -> dict:
        """What a run record states of its budget: the protocol, the epochs in all and by stage,
        and the optimiser steps of each kind (one per mini-batch)."""
        per_epoch = steps_per_epoch(train_size, batch_size)
        return {"protocol": self.protocol, "total": self.total, "by_stage": self.by_stage(),
                "steps": {name: n * per_epoch for name, n in self.by_stage().items()}}


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Optimiser steps in one epoch: one per mini-batch, the last one possibly short (deadwood.data.batches)."""
    return -(-train_size // batch_size)


def check_stage(config, train_size: int) -> None:
    """Raise ConfigError when the method cannot spend its own stage on ``train_size`` training samples
    (the registry's ``Method.check``, given the stage's optimiser steps); nothing else depends on the data."""
    method = get_method(config.method)
    if method.check is not None:
        method.check(config, steps_per_epoch(train_size, config.batch_size) * plan(config).stage_epochs)


def matched_total(config) -> int:
    """The budget every method gets under ``matched``: Deadwooding's solve plus its fine-tune."""
    return config.deadwooding.epochs + config.finetune.epochs


def own_stage_epochs(config) -> int:
    """Epochs of the method's own stage: its section's ``epochs``, or the solve's when that is None."""
    method = get_method(config.method)
    if method.stage is None:
        return 0
    epochs = getattr(getattr(config, method.section), "epochs", None) if method.section else None
    return config.deadwooding.epochs if epochs is None else epochs


def plan(config) -> Plan:
    """The epochs each stage of ``config`` trains for; a budget the method cannot spend is a ConfigError."""
    method = get_method(config.method)
    stage = method.stage.name if method.stage else None
    own = own_stage_epochs(config)
    if config.budget == "finetune":
        return Plan("finetune", stage, own, config.finetune.epochs)
    total = matched_total(config)
    if own > total:
        raise ConfigError(f"budget 'matched' gives {config.method} {total} epochs after the teacher "
                          f"(deadwooding.epochs {config.deadwooding.epochs} + finetune.epochs "
                          f"{config.finetune.epochs}), fewer than its own stage's {own}; lower "
                          f"{method.section}.epochs or use --budget finetune")
    return Plan("matched", stage, own, total - own)
