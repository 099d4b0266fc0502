"""``deadwooding``: the Lagrangian-dual solve and one global cut (docs/method.md, stages 1-2).

Stage 1 solves, for the student ``S`` (a copy of the teacher ``T``)::

    minimise    R(W) = Σ_l ||W_l||_1 / N          (÷ m_l, layer l's initial mean |w|, when layer_normalize)
    subject to  g_l   = E||h_l^S(x) - h_l^T(x)||² / E||h_l^T(x)||² - δ_rep <= 0   (each prunable layer l)
                g_kd  = E KL(softmax(T(x)/τ) || softmax(S(x)/τ)) - δ_kd <= 0
                g_rob = E CE(S(x + a_ε), y) - (1 + ρ) · E CE(T(x + a_ε), y) <= 0

with ``a_ε`` an FGSM (random start) or PGD step against the model evaluated. Per
mini-batch the primal takes an Adam step on ``R + Σ λ_j · max(0, g_j)``; the
multipliers rise by dual ascent at most every ``dual_every`` primal steps (23 by default:
one epoch of the embedded digits at batch 64), by the per-epoch step ``s`` scaled to the
interval (:func:`dual_pace`). On digits that is once per epoch, the paper group's scheme; on
larger data the multipliers start moving before the first epoch ends, where one epoch of
pure L1 descent at λ = 0 can kill the network (docs/benchmarks.md). :mod:`deadwood.methods.deadwooding.multipliers` has
the alternative rules. Stage 2 cuts the ``κN`` smallest ``|w|`` of the solved student in one
global threshold.

Two estimates, both for speed and both recorded: ``g_l`` is a ratio of batch
sums (steadier than a mean of per-sample ratios when a sample's activation is
near zero), and the teacher's adversarial loss, a constant of the problem, is
estimated once over the training set before the solve.
"""
from __future__ import annotations

import contextlib
import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...pruning.cut import cut
from ...data.datasets import batches
from .multipliers import Multipliers
from ...pruning.dead_wood import dead_fractions, magnitude_quantiles, with_dead_fractions
from ...pruning.masks import magnitudes, prunable
from ...robustness.training import perturb
from ...storage.files import WAITING
from ...train import kd_loss, run_epochs
from ...robustness.accuracy import accuracy
from ...events import Stage, emit
from ..registry import PruneContext, PruneResult, register

SNAPSHOT_LIMIT = 2_000_000  # prunable weights: up to this many, the solve keeps every epoch's weights (float16)
STAGE = Stage("dual", "Stage 1 · Lagrangian-dual solve", "dual solve")  # what this method's own Stage 1 is called


def _modules_of(model: nn.Module, names) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    return {n: modules[n.rpartition(".")[0]] for n in names}


class _Capture:
    """Forward hooks that keep the output of each prunable layer, from the forward passes run
    inside :meth:`recording` only.

    The problem clears them once ``g`` is computed (:meth:`DeadwoodingProblem.evaluate`): the
    graph keeps what backward needs, and nothing outlives the step. Left in place, they would
    hold the last batch of every layer between steps (the student's clean and adversarial
    halves, the teacher's batch), and every other forward pass through the model (the attack,
    the epoch's test accuracy, fine-tuning's distillation) would be captured for nothing."""

    def __init__(self, model: nn.Module, names):
        self.out: dict[str, torch.Tensor] = {}
        self.on = False
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in _modules_of(model, names).items()]

    def _hook(self, name):
        def hook(module, args, output):
            if self.on:
                self.out[name] = output

        return hook

    @contextmanager
    def recording(self):
        self.on = True
        try:
            yield self.out
        finally:
            self.on = False

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def teacher_adversarial_loss(teacher: nn.Module, ctx: PruneContext, attack: str, pgd_steps: int) -> float:
    """``E CE(T(x + a_ε), y)`` over the training set, attacks against the teacher (fixed seed)."""
    gen = torch.Generator().manual_seed(ctx.config.seed + 1)
    total = 0.0
    for x, y in batches(ctx.train, 512):
        xa = perturb(teacher, x, y, attack, ctx.config.epsilon, steps=pgd_steps, generator=gen)
        total += float(F.cross_entropy(teacher(xa), y, reduction="sum"))
    return total / len(ctx.train)


class DeadwoodingProblem:
    """The constrained problem of Stage 1 for one student/teacher pair.

    :meth:`evaluate` returns the objective ``R`` and the vector ``g`` of every
    constraint's value for a mini-batch, from one function, as cooper does.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, ctx: PruneContext):
        cfg = ctx.config.deadwooding
        self.student, self.teacher, self.cfg, self.eps = student, teacher, cfg, ctx.config.epsilon
        self.layers = list(prunable(student))
        self.names = [f"rep:{n}" for n in self.layers] + ["kd", "rob"]
        self.scale = {n: (float(p.detach().abs().mean()) if cfg.layer_normalize else 1.0) or 1.0
                      for n, p in prunable(student).items()}
        self.count = sum(p.numel() for p in prunable(student).values())
        self.teacher_rob = teacher_adversarial_loss(teacher, ctx, cfg.attack, cfg.pgd_steps)
        self.s_cap, self.t_cap = _Capture(student, self.layers), _Capture(teacher, self.layers)
        self.gen = torch.Generator().manual_seed(ctx.config.seed + 3)

    def objective(self) -> torch.Tensor:
        w = prunable(self.student)
        return sum(w[n].abs().sum() / self.scale[n] for n in self.layers) / self.count

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, b = self.cfg, len(x)
        with torch.no_grad(), self.t_cap.recording() as t_out:
            t_logits = self.teacher(x)
        xa = perturb(self.student, x, y, cfg.attack, self.eps, steps=cfg.pgd_steps, generator=self.gen)
        with self.s_cap.recording() as s_out:
            out = self.student(torch.cat([x, xa]))  # clean and adversarial halves in one pass
        s_logits, s_adv = out[:b], out[b:]
        g = []
        try:
            for n in self.layers:
                hs, ht = s_out[n][:b].flatten(1), t_out[n].flatten(1)
                g.append(((hs - ht) ** 2).sum() / (ht ** 2).sum().clamp_min(1e-12) - cfg.delta_rep)
        finally:  # the graph holds what backward needs; the captures must not outlive the step
            s_out.clear()
            t_out.clear()
        g.append(kd_loss(s_logits.float(), t_logits.float(), cfg.tau) - cfg.delta_kd)
        g.append(F.cross_entropy(s_adv.float(), y) - (1 + cfg.rho) * self.teacher_rob)
        return self.objective(), torch.stack([v.float() for v in g])

    def close(self):
        self.s_cap.close()
        self.t_cap.close()


def dual_pace(dual_every: int, dual_step: float, samples: int, batch_size: int) -> tuple[int, float]:
    """How often the multipliers move, and by how much: ``(every, step)`` for :class:`PrimalDual`.

    ``dual_step`` s is per epoch, as in the paper group's scheme. With ``dual_every`` k shorter
    than an epoch of E steps, the multipliers move every k steps by ``s·k/E``: the same rise
    per epoch, in smaller steps that start before the first epoch ends. When k is 0 or at
    least E, they move once per epoch by s (``every`` 0)."""
    per_epoch = -(-samples // batch_size)
    if dual_every == 0 or dual_every >= per_epoch:
        return 0, dual_step
    return dual_every, dual_step * dual_every / per_epoch


class PrimalDual:
    """Stage 1's primal-dual step: the problem, its multipliers and their pace, and the epoch means
    of ``g`` that the history records. :func:`solve` trains with it; with ``finetune.keep_dual`` it
    stays open into the fine-tune (``PruneResult.constraints``)."""

    def __init__(self, problem: DeadwoodingProblem, duals: Multipliers, dual_every: int):
        self.problem, self.duals, self.dual_every = problem, duals, dual_every
        self._sum = torch.zeros(len(problem.names), device=duals.tensor().device)
        self._n = self._step = 0

    def lagrangian(self, x, y, objective: bool = True) -> tuple[torch.Tensor, dict]:
        """``R + Σ λ_j · max(0, g_j)`` on a mini-batch (without ``R`` when ``objective`` is False)."""
        r, g = self.problem.evaluate(x, y)
        self.duals.observe(g)
        self._sum += g.detach()
        self._n += 1
        self._step += 1
        penalty = self.duals.lagrangian(g)
        if self.dual_every and self._step % self.dual_every == 0:
            self.duals.update()
        return (r + penalty if objective else penalty), {"objective": r}

    def end_epoch(self) -> dict:
        lambdas = self.duals.update() if self.dual_every == 0 else self.duals.values()
        g = (self._sum / max(self._n, 1)).cpu().tolist()
        self._sum.zero_()
        self._n = 0
        return {"lambdas": lambdas, "violations": dict(zip(self.problem.names, g))}

    def close(self):
        self.problem.close()


def primal_dual(student: nn.Module, ctx: PruneContext, samples: int) -> PrimalDual:
    """The primal-dual step of Stage 1 on ``student`` against ``ctx.teacher``: the problem, its
    multipliers, and the dual pace for an epoch of ``samples`` training samples
    (:func:`dual_pace`). :func:`solve` trains with it; the throughput benchmark times it."""
    run, cfg = ctx.config, ctx.config.deadwooding
    problem = DeadwoodingProblem(student, ctx.teacher, ctx)
    every, step = dual_pace(cfg.dual_every, cfg.dual_step, samples, run.batch_size)
    duals = Multipliers(problem.names, cfg.dual_update, step, cfg.penalty, cfg.kp, device=ctx.device)
    return PrimalDual(problem, duals, every)


@dataclass
class Solve:
    """A solve, Stage 1's outcome: the solved student (dense, not cut yet), its per-epoch history and
    a report. What :func:`solve` computes and the solve store keeps (:mod:`deadwood.storage.solves`)."""

    student: nn.Module
    history: list
    info: dict  # constraints, teacher_adversarial_loss, final_lambdas
    constraints: Optional[PrimalDual] = None  # still open, for fine-tuning with keep_dual
    snapshots: Optional[list] = None  # per epoch, {layer: its weights in float16}; None above SNAPSHOT_LIMIT

    def snapshot_note(self) -> dict:
        """What the stored solve says of its snapshots: how many epochs (0: none kept, the model being
        above ``limit`` prunable weights), of how many weights, in which layer order."""
        sizes = {n: p.numel() for n, p in prunable(self.student).items()}
        return {"epochs": len(self.snapshots or []), "weights": sum(sizes.values()), "layers": list(sizes),
                "dtype": "float16", "limit": SNAPSHOT_LIMIT}


def solve(ctx: PruneContext, keep_open: bool = False) -> Solve:
    """Stage 1 alone: the Lagrangian-dual solve on a copy of the teacher, without the cut.

    The notebooks and charts use it to look at the weights the global cut is about to
    act on; :func:`prune` is ``solve`` followed by one global cut. With ``keep_open``
    the constraints stay attached to the student (``Solve.constraints``) so that
    fine-tuning can keep them on.
    """
    run, cfg = ctx.config, ctx.config.deadwooding
    student = ctx.student()
    dual = primal_dual(student, ctx, len(ctx.train))
    problem, duals, every = dual.problem, dual.duals, dual.dual_every

    sizes = {n: p.numel() for n, p in prunable(student).items()}
    # every epoch's weights, for replaying the solve (a snapshot costs 2 bytes a weight)
    snapshots = [] if sum(sizes.values()) <= SNAPSHOT_LIMIT else None

    def end_epoch(epoch):
        if snapshots is not None:
            snapshots.append({n: p.detach().to("cpu", torch.float16, copy=True)
                              for n, p in prunable(student).items()})
        quantiles = magnitude_quantiles(student)  # κ-free: the dead wood at any κ (deadwood.pruning.dead_wood)
        return {**dual.end_epoch(), "magnitude_quantiles": quantiles,
                "dead_fraction": dead_fractions(quantiles, sizes, run.sparsity),
                "accuracy": accuracy(student, ctx.test)}

    try:
        history = run_epochs(student, ctx.train, dual.lagrangian, stage=STAGE.name, epochs=cfg.epochs, lr=cfg.lr,
                             batch_size=run.batch_size, seed=run.seed + 4, on_event=ctx.on_event,
                             end_epoch=end_epoch, amp=run.amp)
    except BaseException:
        dual.close()
        raise
    if not keep_open:
        dual.close()
    info = {"constraints": problem.names, "teacher_adversarial_loss": problem.teacher_rob,
            "final_lambdas": duals.values(), "dual_every_steps": every, "dual_step_per_update": duals.step}
    return Solve(student, history, info, dual if keep_open else None, snapshots)


@register("deadwooding", "Lagrangian-dual solve towards sparsity under accuracy and robustness "
                         "constraints, then one global magnitude cut", color="#2ca02c", section="deadwooding",
          stage=STAGE, cut_options=True, stores_solve=True, profiles=True)
def prune(ctx: PruneContext) -> PruneResult:
    """Stage 1 (from the solve store when it holds this solve) and one global cut at κ.

    The solve and its history do not depend on κ, so they are stored once per solve setting
    (:mod:`deadwood.storage.solves`) and every other κ starts from them; only ``finetune.keep_dual``,
    which carries the open multipliers into the fine-tune, solves afresh. The sparsity profile is
    not computed here: the result carries the solved weights (``solved``) for the pipeline's own
    profile stage, which runs once the run is published, or the stored profile when there is one."""
    config = ctx.config
    keep = config.finetune.keep_dual  # the open multipliers go on into the fine-tune
    shared = ctx.solves is not None and config.stores_solve()
    waiting = lambda: emit(ctx.on_event, "waiting", STAGE.name, metrics={"message": WAITING + "solve"})  # noqa: E731
    # another process solving the same solve: wait for it, then load what it stored
    with ctx.solves.lock(config, waiting) if shared else contextlib.nullcontext():
        stored = ctx.solves.load(config) if shared else None
        if stored is not None:
            state, summary = stored
            student = ctx.student()
            student.load_state_dict(state)
            sizes = {n: p.numel() for n, p in prunable(student).items()}
            solved = Solve(student, with_dead_fractions(summary["history"], sizes, config.sparsity),
                           summary["info"])
            emit(ctx.on_event, "cached", STAGE.name)
        else:
            solved = solve(ctx, keep_open=keep)
            if shared:
                history = [{k: v for k, v in h.items() if k != "dead_fraction"} for h in solved.history]
                ctx.solves.save(config, solved.student.state_dict(),
                                {"history": history, "info": solved.info, "snapshots": solved.snapshot_note()},
                                snapshots=solved.snapshots)
    profile = ctx.solves.profile(config) if shared else None
    student = solved.student
    uncut = (copy.deepcopy(student).eval() if profile is None and config.deadwooding.profile_samples
             else None)  # what the profile stage cuts at every κ
    mask, report = cut(magnitudes(student), config)  # one global cut unless config.cut says otherwise
    mask.apply(student)
    info = {**report, **solved.info, "solve_cached": stored is not None}
    return PruneResult(student, mask, solved.history, info, constraints=solved.constraints, profile=profile,
                       solved=uncut)
