"""Progress events: the one channel through which long work reports back.

The CLI turns them into tqdm bars, the app into progress bars and live charts.
A callback may raise :class:`deadwood.errors.RunStopped` to stop a run at the next
event; work finished before it (a cached teacher, say) is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass(frozen=True)
class Stage:
    """A stage of a run as events name it; :mod:`deadwood.stages` holds the table of them."""

    name: str  # what events call it
    label: str  # long, for the app
    short: str  # for a progress bar
    unit: str = "epoch"  # what one 'epoch' event of it counts (an evaluation's batch, a profile's cut)


@dataclass(frozen=True)
class Event:
    """``kind``: 'start' (a stage begins; ``total`` = its epochs), 'epoch' (one done,
    ``metrics`` = its history entry), 'end' (stage done), 'cached' (served from disk),
    'damaged' (the cached copy is damaged and is computed again; ``metrics["message"]`` says how),
    'waiting' (another process computes this entry; sent at every try of its lock, until this
    process computes or serves it; ``metrics["message"]`` says so)."""

    kind: str
    stage: str
    epoch: int = 0
    total: int = 0
    metrics: dict = field(default_factory=dict)


OnEvent = Optional[Callable[[Event], None]]


def emit(on_event: OnEvent, kind: str, stage: str, epoch: int = 0, total: int = 0, metrics: dict | None = None):
    if on_event is not None:
        on_event(Event(kind, stage, epoch, total, metrics or {}))
