"""The stages of a run, in order: one table that events, progress bars and the app all read.

Events (:mod:`deadwood.events`) name a stage; a stage has a long label (the app's progress
list) and a short one (a progress bar). Stage 1 belongs to the method, so its name and
labels come from the method registry (:class:`deadwood.methods.Method`); methods without a
Stage 1 of their own go straight from the teacher to the cut.
"""
from __future__ import annotations

from .events import Stage
from .methods import get_method, methods
from .methods.budget import plan

TEACHER = Stage("teacher", "Stage 0 · dense teacher", "teacher (dense)")
TEACHER_EVAL = Stage("teacher-eval", "Stage 0 · teacher robustness", "teacher robustness", "batch")
CUT = Stage("cut", "Stage 2 · global cut", "cut")
FINETUNE = Stage("finetune", "Stage 3 · distillation + adversarial fine-tune", "fine-tune")
EVAL = Stage("eval", "Evaluation · robustness curve", "evaluate", "batch")
# after the run is published (its record is served while this goes on): one event per κ cut
PROFILE = Stage("profile", "Sparsity profile · one cut at every κ", "sparsity profile", "cut")


def all_stages() -> list[Stage]:
    """Every stage, in run order (each method's own Stage 1 between the teacher and the cut)."""
    own = list({m.stage.name: m.stage for m in methods() if m.stage is not None}.values())
    return [TEACHER, TEACHER_EVAL, *own, CUT, FINETUNE, EVAL, PROFILE]


def stage(name: str) -> Stage:
    """The stage called ``name``; an unknown name gets itself as its labels."""
    return next((s for s in all_stages() if s.name == name), Stage(name, name, name))


def planned(config) -> list[str]:
    """The stages a fresh run of ``config`` goes through, in order. The teacher's evaluation
    ('teacher-eval') happens only when the teacher is trained, so it is not planned; the sparsity
    profile ('profile', after the run is published) when the method has one and
    ``deadwooding.profile_samples`` is not 0."""
    method = get_method(config.method)
    names = [TEACHER.name] + ([method.stage.name] if method.stage else []) + [CUT.name]
    if plan(config).finetune_epochs > 0:
        names.append(FINETUNE.name)
    names.append(EVAL.name)
    if method.profiles and config.deadwooding.profile_samples:
        names.append(PROFILE.name)
    return names
