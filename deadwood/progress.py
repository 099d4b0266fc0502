"""Events as tqdm progress bars on stderr: the one builder the command line uses."""
from __future__ import annotations

import sys
from typing import Optional

from .events import Event, OnEvent
from .stages import stage


def progress_bars(label: Optional[str] = None, *, indent: str = "", leave: bool = True,
                  position: Optional[int] = None, unit: Optional[str] = None) -> OnEvent:
    """An ``on_event`` callback drawing one bar per stage while it runs.

    ``label`` names every bar (default: the stage's short label); ``leave`` keeps finished
    bars on screen and reports cached stages in a line of their own; ``position`` pins the
    bars to a row (under an outer bar, say); ``unit`` names what a bar counts (default: the stage's
    own, :attr:`deadwood.events.Stage.unit`). Epoch metrics with an accuracy show it."""
    from tqdm.auto import tqdm

    bars: dict = {}
    waiting: set = set()

    def on_event(e: Event) -> None:
        if e.kind == "start":
            bars[e.stage] = tqdm(total=e.total, desc=indent + (label or stage(e.stage).short),
                                 unit=unit or stage(e.stage).unit, leave=leave, file=sys.stderr,
                                 dynamic_ncols=True, position=position)
        elif e.kind == "step" and e.stage in bars:  # a slow epoch: where in it, and the clock moves on
            bars[e.stage].set_postfix_str(f"epoch {e.epoch}: batch {e.metrics['step']}/{e.metrics['steps']}")
        elif e.kind == "epoch" and e.stage in bars:
            bar = bars[e.stage]
            bar.update(max(e.epoch - bar.n, 1) if e.epoch else 1)
            acc = e.metrics.get("accuracy")  # replaces a step's postfix, which no longer holds
            if acc is not None:
                bar.set_postfix(acc=f"{acc:.3f}")
            elif bar.postfix:
                bar.set_postfix_str("")
        elif e.kind == "end" and e.stage in bars:
            bars.pop(e.stage).close()
        elif e.kind == "cached" and leave:
            print(f"{stage(e.stage).short}: from cache", file=sys.stderr)
        elif e.kind == "damaged":
            print(f"warning: {e.metrics.get('message')}; computing it again", file=sys.stderr)
        elif e.kind == "waiting" and e.stage not in waiting:  # repeated at every try: say it once
            waiting.add(e.stage)
            print(f"{stage(e.stage).short}: {e.metrics.get('message')}", file=sys.stderr)

    return on_event
