"""Progress events: the one channel through which long work reports back.

The CLI turns them into tqdm bars, the app into progress bars and live charts.
A callback may raise :class:`deadwood.errors.RunStopped` to stop a run at the next
event; work finished before it (a cached teacher, say) is kept. A training epoch that lasts longer
than :data:`STEP_EVERY_S` also reports how far into it the stage is ('step' events), so a slow
epoch on a real network never looks frozen and a stop never waits for the epoch's end.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

STEP_EVERY_S = 1.0  # the least time between two 'step' events of a training stage


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
    ``metrics`` = its history entry), 'step' (within epoch ``epoch`` of ``total``, the one under way:
    ``metrics["step"]`` of its ``metrics["steps"]`` batches done; at most one every
    :data:`STEP_EVERY_S` seconds, never for the epoch's last batch, which its 'epoch' event follows),
    'end' (stage done), 'cached' (served from disk),
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


class StepReports:
    """The 'step' events of one training stage: :meth:`batch` after each batch sends one when
    :data:`STEP_EVERY_S` has passed since the epoch began or since the last one, so an epoch
    shorter than that sends none. Costs a clock read a batch; nothing without a callback."""

    def __init__(self, on_event: OnEvent, stage: str, epochs: int, samples: int, batch_size: int):
        self.on_event, self.stage, self.epochs = on_event, stage, epochs
        self.steps = math.ceil(samples / batch_size)
        self._last = time.monotonic()

    def epoch(self) -> None:
        """An epoch begins: the time to the first report counts from here."""
        self._last = time.monotonic()

    def batch(self, epoch: int, done: int) -> None:
        """``done`` batches of epoch ``epoch`` (1-based) are finished."""
        if self.on_event is None or done >= self.steps:
            return
        now = time.monotonic()
        if now - self._last >= STEP_EVERY_S:
            self._last = now
            emit(self.on_event, "step", self.stage, epoch, self.epochs, {"step": done, "steps": self.steps})
