"""``gmp``: gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune").

Starting from the teacher, the student trains with the fine-tune's loss (distillation plus the
fine-tune attack, :func:`deadwood.train.distill_step`; Adam at ``gmp.lr``, by default
``finetune.lr``) while one global magnitude mask tightens from sparsity 0 to κ on Zhu & Gupta's
cubic schedule

    s_t = κ + (s_0 − κ) (1 − (t − t_0) / (n Δt))³,   s_0 = 0,   t = t_0 + Δt, t_0 + 2Δt, ..., t_0 + nΔt.

**How often it prunes.** Every ``Δt = gmp.frequency`` optimiser steps (one step per mini-batch;
step t means "after t steps of this stage", so t = T is its end). The stage has
``T = epochs · ⌈N / batch_size⌉`` steps (``epochs``: ``gmp.epochs``, by default the solve's, see
:mod:`deadwood.methods.budget`); the schedule starts at ``t_0 = round(gmp.start · T)`` and takes
``n = ⌊(round(gmp.end · T) − t_0) / Δt⌋`` pruning steps, so its last one, at ``t_0 + nΔt``, sets κ
exactly. With the defaults (Δt 10, start 0, end 1) on digits at batch 64 (23 steps an epoch,
15 epochs) that is 34 pruning steps, one every 10 of the stage's 345. A schedule with no pruning
step (n < 1) cannot reach κ: :func:`check` refuses it, with a :class:`ConfigError`, before the run
does any work.

**Each pruning step** is one global cut (:func:`deadwood.pruning.masks.global_cut`, with the run's collapse
guard ``min_keep``, as the ``magnitude`` method's cut) of ``round(s_t · N)`` weights, scored by
``|w|``, where the weights pruned before score −1 so they are cut again: the masks are nested and a
pruned weight never returns. Between pruning steps the gradients of pruned weights are zeroed and
the mask is re-applied after every step (``run_epochs(mask=...)``), so they stay exactly zero.
The shared fine-tune (Stage 3) then trains the final mask for the epochs the budget leaves it.

Departures from Zhu & Gupta (and their TensorFlow ``model_pruning`` code):

- **global, not per layer:** one threshold over all prunable layers (with the collapse guard);
  they bring every layer to s_t on its own;
- **loss and optimiser:** the fine-tune's (distillation + adversarial training at the run's ε,
  Adam at a constant learning rate), where they keep training the model's own task loss with its
  own optimiser and learning-rate schedule;
- **the recovery after the last pruning step** is the shared Stage 3 (a fresh Adam), not the
  same training run going on;
- **where the schedule sits:** ``t_0`` and the end are fractions of this stage rather than step
  numbers of a whole training run, and the schedule starts from the trained teacher with
  ``s_0 = 0``;
- **pruned weights are set to zero** in the model (and their gradients masked), where their code
  keeps each weight behind a mask variable; since a pruned weight never returns here, the
  network computes the same function.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ..events import Stage
from ..pruning.masks import Mask, global_cut, prunable
from ..robustness.accuracy import accuracy
from ..train import distill_step, run_epochs
from .budget import own_stage_epochs, steps_per_epoch
from .registry import PruneContext, PruneResult, register

STAGE = Stage("gmp", "Stage 1 · gradual magnitude pruning", "gmp pruning")  # this method's own Stage 1


def schedule(steps: int, frequency: int, start: float, end: float, sparsity: float) -> list[tuple[int, float]]:
    """The pruning steps of a stage of ``steps`` optimiser steps: ``(t, s_t)`` for
    ``t = t_0 + iΔt``, ``i = 1..n``, on the cubic schedule from ``s_0 = 0`` to ``sparsity`` (the last
    ``s_t`` is ``sparsity`` exactly). Raise ConfigError when it has no pruning step (n < 1)."""
    t0, last = round(start * steps), round(end * steps)
    n = (last - t0) // frequency
    if n < 1:
        raise ConfigError(
            f"gmp cannot reach sparsity {sparsity}: its stage has {steps} optimiser steps, and pruning every "
            f"{frequency} steps from step {t0} to step {last} (gmp.start {start}, gmp.end {end}) leaves "
            f"{max(n, 0)} pruning steps; lower --gmp-frequency, widen --gmp-start/--gmp-end, or give the stage "
            f"more epochs (--gmp-epochs, or the solve's --deadwooding-epochs it defaults to)")
    s0 = 0.0
    return [(t0 + i * frequency, sparsity + (s0 - sparsity) * (1 - i / n) ** 3) for i in range(1, n + 1)]


def check(config, stage_steps: int) -> None:
    """The registry's pre-run check: the schedule of ``config`` reaches κ in ``stage_steps`` steps."""
    g = config.gmp
    schedule(stage_steps, g.frequency, g.start, g.end, config.sparsity)


class _Tightening:
    """The mask :func:`deadwood.train.run_epochs` enforces after every step, replaced at each pruning step."""

    def __init__(self, mask: Mask):
        self.mask = mask

    def mask_gradients(self, model) -> None:
        self.mask.mask_gradients(model)

    def apply(self, model):
        return self.mask.apply(model)


@register("gmp", "gradual magnitude pruning (Zhu & Gupta): a global |w| mask tightens from 0 to κ on a cubic "
                 "schedule while the model trains with the fine-tune's loss", color="#bcbd22", section="gmp",
          stage=STAGE, check=check)
def prune(ctx: PruneContext) -> PruneResult:
    cfg, run = ctx.config.gmp, ctx.config
    fc = run.finetune
    model = ctx.student()
    steps = own_stage_epochs(run) * steps_per_epoch(len(ctx.train), run.batch_size)
    plan = dict(schedule(steps, cfg.frequency, cfg.start, cfg.end, run.sparsity))
    current = _Tightening(Mask.ones_like(model))
    state = {"done": 0, "report": {"threshold": None, "guarded": {}}, "pruned_at": []}

    @torch.no_grad()
    def maybe_prune() -> None:
        """Prune to s_t when ``t`` (the steps taken so far) is a pruning step not yet taken."""
        t = state["done"]
        if t not in plan or (state["pruned_at"] and state["pruned_at"][-1] == t):
            return
        scores = {n: torch.where(current.mask[n], p.abs(), torch.full_like(p, -1.0))
                  for n, p in prunable(model).items()}
        current.mask, state["report"] = global_cut(scores, plan[t], run.min_keep)
        current.mask.apply(model)
        state["pruned_at"].append(t)

    gen = torch.Generator().manual_seed(run.seed + 9)
    distill = distill_step(model, ctx.teacher, attack=fc.attack, eps=run.epsilon, pgd_steps=fc.pgd_steps,
                           alpha_kd=fc.alpha_kd, tau=fc.tau, generator=gen)

    def step(x, y):
        maybe_prune()
        state["done"] += 1
        return distill(x, y)

    def end_epoch(epoch):
        maybe_prune()  # a pruning step on an epoch's last step (the schedule's last, with gmp.end 1)
        return {"accuracy": accuracy(model, ctx.test), "sparsity": current.mask.sparsity()}

    history = run_epochs(model, ctx.train, step, stage=STAGE.name, epochs=own_stage_epochs(run),
                         lr=fc.lr if cfg.lr is None else cfg.lr, batch_size=run.batch_size, seed=run.seed + 10,
                         on_event=ctx.on_event, mask=current, end_epoch=end_epoch, amp=run.amp)
    if state["pruned_at"] != sorted(plan):  # every pruning step taken, the last one at κ
        raise RuntimeError(f"gmp pruned at steps {state['pruned_at']}, its schedule says {sorted(plan)}")
    info = {**state["report"], "schedule": {"steps": steps, "frequency": cfg.frequency, "pruning_steps": len(plan),
                                            "first_step": min(plan), "last_step": max(plan)}}
    return PruneResult(model, current.mask, history, info=info)
