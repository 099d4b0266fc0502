"""The method registry: one shared signature, and every fact about each method.

A method is a function ``prune(ctx: PruneContext) -> PruneResult``: it receives the
trained dense teacher and returns a *new* model with its mask applied. Stage 3
(fine-tuning) and the evaluation are shared and happen outside, in
:mod:`deadwood.pipeline`, so every method gets the same budget and the same judge.

The registry holds every fact about a method (:class:`Method`): its configuration section,
its own Stage 1 (name and labels, and whether it is stored apart from κ), whether the cut options apply, its colour and its place in
lists. The configuration, the stage table, the command line, the benchmark and the app read
them from here; adding a method is one file in this folder plus its line at the bottom.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from ..data.datasets import ArrayDataset
from ..errors import ConfigError
from ..events import OnEvent, Stage
from ..pruning.masks import Mask


@dataclass
class PruneContext:
    teacher: nn.Module  # trained, eval mode; never modified
    config: "RunConfig"  # noqa: F821
    train: ArrayDataset  # on ``device``
    test: ArrayDataset
    device: torch.device
    on_event: OnEvent = None
    solves: Optional["SolveStore"] = None  # noqa: F821  (deadwood.storage.solves: where a Stage 1 solve may be stored)

    def student(self) -> nn.Module:
        """A trainable copy of the teacher."""
        s = copy.deepcopy(self.teacher)
        for p in s.parameters():
            p.requires_grad_(True)
        return s.train()


@dataclass
class PruneResult:
    model: nn.Module  # mask already applied
    mask: Mask
    history: list = field(default_factory=list)  # per-epoch entries of the method's own stage
    info: dict = field(default_factory=dict)  # threshold, guarded layers, ... (JSON-able)
    # Constraints that may stay active during fine-tuning (Deadwooding's ``finetune.keep_dual``):
    # an object with ``lagrangian(x, y, objective=False) -> (loss, metrics)``, ``end_epoch() -> dict``
    # and ``close()``; None for methods without constraints.
    constraints: Optional[object] = None
    profile: Optional[dict] = None  # the sparsity profile of the method's own weights, when already stored
    # The method's own weights before the cut (a copy), which the pipeline's profile stage cuts at every κ
    # once the run is published (deadwood.pruning.sparsity_profile); None when there is no profile to compute.
    solved: Optional[nn.Module] = None


@dataclass(frozen=True)
class Method:
    name: str
    prune: Callable[[PruneContext], PruneResult]
    about: str
    color: str  # its colour in every chart
    prunes: bool = True  # False for 'dense'
    section: Optional[str] = None  # the RunConfig section only this method reads (and keys on)
    stage: Optional[Stage] = None  # its own Stage 1, between the teacher and the cut
    cut_options: bool = False  # whether RunConfig.cut (allocation, granularity) shapes its cut
    stores_solve: bool = False  # whether its Stage 1 ignores κ and is stored once (deadwood.storage.solves)
    # What the method checks before any work, once the data's size is known: ``check(config,
    # stage_steps)`` raises ConfigError when its own stage cannot run in ``stage_steps`` optimiser
    # steps (GMP's schedule must reach κ); see deadwood.methods.budget.check_stage.
    check: Optional[Callable[["RunConfig", int], None]] = None  # noqa: F821
    profiles: bool = False  # whether a run gets a sparsity profile of its solved weights (stage 'profile')


_REGISTRY: dict[str, Method] = {}


def register(name: str, about: str, *, color: str, prunes: bool = True, section: Optional[str] = None,
             stage: Optional[Stage] = None, cut_options: bool = False, stores_solve: bool = False,
             check: Optional[Callable] = None, profiles: bool = False):
    """Add the decorated ``prune`` function to the registry under ``name``; the order of
    registration is the order users see."""
    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"method '{name}' registered twice")
        _REGISTRY[name] = Method(name, fn, about, color, prunes, section, stage, cut_options, stores_solve, check,
                                 profiles)
        return fn

    return deco


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown method '{name}'; choose one of: {', '.join(_REGISTRY)}") from None


def method_names() -> list[str]:
    return list(_REGISTRY)


def methods() -> list[Method]:
    return list(_REGISTRY.values())


# Colours no registered method takes (Plotly's qualitative set), for a name the registry does not know:
# a record of a retired method, a row written by other code.
SPARE_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
                 "#ff97ff", "#fecb52")


def method_colours(names) -> dict[str, str]:
    """Each name's colour in every chart of the app, the benchmark and the notebooks: the registry's for a
    method it knows. A name it does not know takes a spare colour chosen by its characters (the same in
    every process: ``hash`` of a string is not), the next spare while an earlier name of ``names``
    holds that one, so that no two names drawn together share a colour while spares last."""
    out, taken = {}, set()
    for name in dict.fromkeys(names):
        if name in _REGISTRY:
            out[name] = _REGISTRY[name].color
            continue
        start = sum(map(ord, name))
        picks = [SPARE_COLOURS[(start + i) % len(SPARE_COLOURS)] for i in range(len(SPARE_COLOURS))]
        out[name] = next((c for c in picks if c not in taken), picks[0])
        taken.add(out[name])
    return out


def method_sections() -> tuple[str, ...]:
    """Configuration sections that belong to one method each (and count only for it)."""
    return tuple(m.section for m in _REGISTRY.values() if m.section)


def cut_methods() -> tuple[str, ...]:
    """The methods whose Stage 2 cut reads ``RunConfig.cut``."""
    return tuple(m.name for m in _REGISTRY.values() if m.cut_options)
