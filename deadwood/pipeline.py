"""teacher -> prune -> fine-tune -> evaluate, with results cached under a hash of the config.

``run(config)`` is the one entry point the CLI, the app and the notebooks call.
The teacher is cached under ``teacher_key()`` (every method at every sparsity
prunes the same one), the finished run under ``key()``; asking again is a lookup.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from pathlib import Path

import torch
from torch import nn

from .config import RunConfig, resolve
from .data.datasets import ArrayDataset, load_split
from .device import cpu_threads, resolve_device
from .events import OnEvent, emit
from . import fingerprint
from .stages import EVAL, FINETUNE, PROFILE, TEACHER, TEACHER_EVAL
from .methods import PruneContext, get_method
from .methods.budget import check_stage, plan
from .models.checkpoint import load_checkpoint
from .pruning.masks import check_cuttable
from .models.registry import model_for
from .storage.cache import Cache
from .errors import RunFileError
from .storage.record import (RECORD_FILE, LoadedRun, RunRecord, check_out, copy_run, load_run, read_record,
                             update_record, versions, write_run)
from .pruning.masks import prunable, sparsity_of
from .pruning.sparsity_profile import profile_grid, profile_samples, sparsity_profile
from . import robustness
from .storage.files import WAITING, entry_lock
from .train import adversarial_step, distill_step, natural_step, run_epochs
from .robustness.accuracy import accuracy
from .robustness.checks import chance_warning


def load_data(config: RunConfig, device: torch.device) -> tuple[ArrayDataset, ArrayDataset]:
    return load_split(config, "train").to(device), load_split(config, "test").to(device)


def evaluate(model: nn.Module, test: ArrayDataset, config: RunConfig, on_event: OnEvent = None,
             stage: str = EVAL.name) -> tuple[float, dict]:
    """Clean accuracy and the robustness record (foolbox PGD at ``config.eval_epsilons``, with
    per-class recall and sanity checks) on ``config.evaluation.samples`` test samples; progress
    goes out as events of ``stage``."""
    ev = config.evaluation
    curve = robustness.evaluate(model, test, "pgd", config.eval_epsilons, steps=ev.steps, samples=ev.samples,
                                seed=config.seed, on_event=on_event, stage=stage)
    return curve["clean_accuracy"], curve


def train_teacher(config: RunConfig, train: ArrayDataset, test: ArrayDataset, device: torch.device,
                  on_event: OnEvent = None) -> tuple[nn.Module, list]:
    """Stage 0: a dense model trained naturally or adversarially (``config.teacher``), from a fresh
    initialisation or from ``config.teacher_checkpoint`` (``teacher.epochs`` 0: the checkpoint as it is)."""
    tc = config.teacher
    model = model_for(config, seed=config.seed)
    if config.teacher_checkpoint is not None:
        load_checkpoint(model, config.teacher_checkpoint)
    model = model.to(device)
    gen = torch.Generator().manual_seed(config.seed + 5)
    step = (natural_step(model) if tc.attack == "none" or config.teacher_epsilon == 0
            else adversarial_step(model, tc.attack, config.teacher_epsilon, tc.pgd_steps, gen))
    history = run_epochs(model, train, step, stage=TEACHER.name, epochs=tc.epochs, lr=tc.lr,
                         batch_size=config.batch_size, seed=config.seed, on_event=on_event,
                         end_epoch=lambda e: {"accuracy": accuracy(model, test)},
                         weight_decay=tc.weight_decay, amp=config.amp)
    return model.eval(), history


def get_teacher(config: RunConfig, train, test, device, cache: Cache, on_event: OnEvent = None,
                use_cache: bool = True) -> tuple[nn.Module, dict]:
    """The cached teacher for ``config`` (trained and cached on a miss; a damaged entry is a miss
    announced by a 'damaged' event, and replaced).

    Returns the model (eval mode, frozen) and its summary: history, clean accuracy,
    robustness curve, training time.
    """
    if use_cache:
        try:
            found = cache.teacher(config)
        except RunFileError as e:  # damaged: trained again below, and the entry replaced
            found = None
            emit(on_event, "damaged", TEACHER.name, metrics={"message": str(e)})
        if found is not None:
            emit(on_event, "cached", TEACHER.name)
            model, summary = found
            return _frozen(model.to(device)), summary
    t0 = time.perf_counter()
    model, history = train_teacher(config, train, test, device, on_event)
    seconds = time.perf_counter() - t0
    clean, curve = evaluate(model, test, config, on_event, stage=TEACHER_EVAL.name)
    summary = {"history": history, "clean_accuracy": clean, "robustness": curve, "seconds": seconds,
               "epsilons": config.eval_epsilons, "samples": config.evaluation.samples,
               "key": config.teacher_key(), "code": fingerprint.code_fingerprint()}
    cache.save_teacher(config, model, summary)
    return _frozen(model), summary


def _frozen(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def finetune(model: nn.Module, teacher: nn.Module, mask, config: RunConfig, train, test,
             on_event: OnEvent = None, constraints=None) -> list:
    """Stage 3, shared by every method: distillation + adversarial training under ``mask``, for
    the epochs the budget leaves it (deadwood.methods.budget).

    With ``constraints`` (Deadwooding's ``finetune.keep_dual``), their Lagrangian terms are
    added to the loss and their multipliers keep rising at the solve's pace.
    """
    fc = config.finetune
    epochs = plan(config).finetune_epochs
    if epochs == 0:
        return []
    gen = torch.Generator().manual_seed(config.seed + 6)
    step = distill_step(model, teacher, attack=fc.attack, eps=config.epsilon, pgd_steps=fc.pgd_steps,
                        alpha_kd=fc.alpha_kd, tau=fc.tau, generator=gen)
    if constraints is not None:
        distill = step

        def step(x, y):
            loss, metrics = distill(x, y)
            penalty, extra = constraints.lagrangian(x, y, objective=False)
            return loss + penalty, {**metrics, **extra}

    def end_epoch(epoch):
        entry = {"accuracy": accuracy(model, test)}
        if constraints is not None:
            entry.update(constraints.end_epoch())
        return entry

    try:
        return run_epochs(model, train, step, stage=FINETUNE.name, epochs=epochs, lr=fc.lr,
                          batch_size=config.batch_size, seed=config.seed + 7, on_event=on_event, mask=mask,
                          end_epoch=end_epoch, amp=config.amp)
    finally:
        if constraints is not None:
            constraints.close()


def run(config: RunConfig, *, on_event: OnEvent = None, cache_dir=None, out=None, force: bool = False,
        use_cache: bool = True) -> LoadedRun:
    """Run ``config`` end to end (or fetch it from the cache) and return the loaded run.

    With ``out``, the run directory is also copied there: ``out`` is checked first, before any
    work (:func:`deadwood.storage.record.check_out`; a previous run there is replaced only with
    ``force``). ``config`` is checked first, values and what they point to (:func:`deadwood.config.resolve`).
    A damaged cache entry (teacher or run) is computed again and replaced, with a
    'damaged' event. Raise :class:`deadwood.errors.RunStopped` from ``on_event`` to stop; the
    teacher, once trained, stays cached. The run is published before its last stage, the sparsity
    profile ('profile'): a run whose profile never finished is served at once by :meth:`Cache.load`,
    and here gets its profile before it is returned.
    """
    config = resolve(config)
    if out is not None:
        out = check_out(Path(out), force)
    cache = Cache(cache_dir)
    final = cache.run_dir(config)
    if use_cache:
        loaded = _served(config, cache, on_event, out, force)
        if loaded is not None:
            return loaded
    check_cuttable(model_for(config), config.sparsity, config.min_keep)  # a bad choice fails before any work
    check_method(config)
    cache.check_writable()  # before the work, not when publishing it

    # Another process computing this run holds its lock: wait, then serve what it published.
    with entry_lock(final, lambda: emit(on_event, "waiting", "run", metrics={"message": WAITING + "run"})) as waited:
        if use_cache and (waited or (final / RECORD_FILE).exists()):
            loaded = _served(config, cache, on_event, out, force, quiet=True)
            if loaded is not None:
                return loaded
        device = resolve_device(config.device)
        with cpu_threads(device):
            return _compute(config, device, cache, final, on_event, out, force, use_cache)


def check_method(config: RunConfig) -> None:
    """Raise ConfigError, before any work, when the method cannot spend its own stage on this data
    (deadwood.methods.budget.check_stage: a GMP schedule that cannot reach κ). Reads the training
    split only for a method that checks (it is read once per process and reused by the run)."""
    if get_method(config.method).check is not None:
        check_stage(config, len(load_split(config, "train")))


def _served(config: RunConfig, cache: Cache, on_event: OnEvent, out, force: bool, quiet: bool = False):
    """The cached run of ``config`` ('cached' event; copied to ``out``), or None ('damaged' event
    unless ``quiet``). A run whose profile stage did not finish (stopped, failed, killed) gets its
    profile now (:func:`_complete_profile`); ``quiet`` means the caller holds the run's lock."""
    loaded, damage = cache.load(config)
    if loaded is not None:
        emit(on_event, "cached", "run")
        if _profile_pending(config, cache, loaded.record):
            loaded = _complete_profile(config, cache, loaded, on_event, locked=quiet)
        if out is not None:
            copy_run(cache.run_dir(config), out, replace=force)
        return loaded
    if damage and not quiet:
        emit(on_event, "damaged", "run", metrics={"message": damage})
    return None


def _prefix(config: RunConfig, device: torch.device, cache: Cache, on_event: OnEvent, use_cache: bool,
            timings: dict):
    """The start every run shares: the seed, the data, the teacher (trained and cached on a miss)."""
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    train, test = load_data(config, device)
    timings["data"] = time.perf_counter() - t0

    t = time.perf_counter()
    with entry_lock(cache.teacher_dir(config), lambda: emit(on_event, "waiting", TEACHER.name,
                                                            metrics={"message": WAITING + "teacher"})):
        teacher, tsum = get_teacher(config, train, test, device, cache, on_event, use_cache)
    timings["teacher"] = time.perf_counter() - t
    timings["teacher_training"] = tsum["seconds"]
    return train, test, teacher, tsum


def _prune(config: RunConfig, device: torch.device, cache: Cache, on_event: OnEvent, use_cache: bool,
           prefix):
    train, test, teacher, _ = prefix
    method = get_method(config.method)
    return method.prune(PruneContext(teacher, config, train, test, device, on_event,
                                     solves=cache.solves if use_cache else cache.solves.write_only()))


def prepare(config: RunConfig, upto: str, *, cache_dir=None, on_event: OnEvent = None) -> None:
    """Compute and cache what a run of ``config`` would start from, exactly as :func:`run` would:
    ``upto`` 'teacher' (its teacher) or 'solve' (its teacher and, for a method that caches a
    Stage 1 solve, that solve). What the sweep executor runs on a worker, one cache entry a task."""
    if upto not in ("teacher", "solve"):
        raise ValueError(f"prepare: upto must be 'teacher' or 'solve', got {upto!r}")
    config = resolve(config)
    cache = Cache(cache_dir)
    device = resolve_device(config.device)
    with cpu_threads(device):
        prefix = _prefix(config, device, cache, on_event, True, {})
        if upto == "solve":
            _prune(config, device, cache, on_event, True, prefix)  # the cut after the solve is cheap


def chance_warnings(teacher_curve: dict, pruned_curve: dict) -> list[str]:
    """The record's ``warnings``: a line for the teacher and for the pruned model when its clean
    accuracy is at chance (:func:`deadwood.robustness.checks.chance_warning`), each read from its
    evaluation (the samples, the classes)."""
    lines = (chance_warning(who, c.get("clean_accuracy"), len(c.get("classes") or ()), c.get("samples") or 0)
             for who, c in (("the dense teacher", teacher_curve), ("the pruned model", pruned_curve)))
    return [line for line in lines if line]


def _compute(config: RunConfig, device: torch.device, cache: Cache, final: Path, on_event: OnEvent, out,
             force: bool, use_cache: bool) -> LoadedRun:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prefix = _prefix(config, device, cache, on_event, use_cache, timings)
    train, test, teacher, tsum = prefix

    t = time.perf_counter()
    result = _prune(config, device, cache, on_event, use_cache, prefix)
    timings["prune"] = time.perf_counter() - t
    one_shot = accuracy(result.model, test)
    emit(on_event, "epoch", "cut", 1, 1, {"one_shot_accuracy": one_shot, "sparsity": result.mask.sparsity()})

    t = time.perf_counter()
    ft_history = finetune(result.model, teacher, result.mask, config, train, test, on_event,
                          result.constraints)
    timings["finetune"] = time.perf_counter() - t

    t = time.perf_counter()
    clean, curve = evaluate(result.model, test, config, on_event)
    timings["eval"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    model_cpu = copy.deepcopy(result.model).cpu()
    layer_sparsity, layer_sizes, global_sparsity = sparsity_of(model_cpu)
    record = RunRecord(
        config={**config.to_dict(), "device": str(device)},
        versions=versions(),
        history=tsum["history"] + result.history + ft_history,
        layer_sparsity=layer_sparsity, layer_sizes=layer_sizes, global_sparsity=global_sparsity,
        one_shot_accuracy=one_shot, clean_accuracy=clean, robustness=curve, timings=timings,
        teacher={"clean_accuracy": tsum["clean_accuracy"], "robustness": tsum["robustness"],
                 "key": tsum["key"], "cached": timings["teacher"] < tsum["seconds"]},
        prune_info=result.info, sparsity_profile=result.profile, key=config.key(),
        train_epochs=plan(config).record(len(train), config.batch_size),
        code=fingerprint.code_fingerprint(), threads=torch.get_num_threads(),
        warnings=chance_warnings(tsum["robustness"], curve))
    write_run(final, record, model_cpu, teacher)  # published: served from here on, profile or not
    if result.profile is not None or result.solved is not None:
        _add_profile(config, cache, final, on_event, result.profile, result.solved, teacher, len(train), test)
    if out is not None:
        copy_run(final, out, replace=force)
    return load_run(final)


def _add_profile(config: RunConfig, cache: Cache, final: Path, on_event: OnEvent, stored, solved, teacher,
                 train_images: int, test: ArrayDataset) -> None:
    """Stage 'profile', after the run is published: the sparsity profile of ``solved`` (the method's
    uncut weights) against the ``teacher``, sized by :func:`deadwood.pruning.sparsity_profile.profile_samples`,
    one 'epoch' event per κ; or the ``stored`` one ('cached'). It is stored beside the solve (when the
    run stores one) and written into the run's record with ``timings["profile"]``, each atomically:
    stopped or failed half way, the run stays served without it and its next request computes it."""
    if stored is not None:
        emit(on_event, "cached", PROFILE.name)
        profile, seconds = stored, 0.0
    else:
        t = time.perf_counter()
        sizes = {n: p.numel() for n, p in prunable(solved).items()}
        total = len(profile_grid(config, sizes))
        emit(on_event, "start", PROFILE.name, 0, total)
        profile = sparsity_profile(solved, teacher, test, config,
                                   samples=profile_samples(config, sizes, train_images, len(test)),
                                   progress=lambda done, of: emit(on_event, "epoch", PROFILE.name, done, of))
        emit(on_event, "end", PROFILE.name, total, total)
        seconds = time.perf_counter() - t
        if config.stores_solve() and cache.solves.stamp(config) is not None:
            cache.solves.save_profile(config, profile)
    record = read_record(final)  # as it is now: what else was added to it meanwhile stays (its deployment)
    update_record(final, dataclasses.replace(record, sparsity_profile=profile,
                                             timings={**record.timings, "profile": seconds}))


def _profile_pending(config: RunConfig, cache: Cache, record: RunRecord) -> bool:
    """Whether a published run lacks the profile it should have and can still get: its method
    profiles, ``deadwooding.profile_samples`` is not 0, and its solve is stored (a ``keep_dual`` run,
    which stores none, keeps the record it has)."""
    return (record.sparsity_profile is None and get_method(config.method).profiles
            and bool(config.deadwooding.profile_samples) and config.stores_solve()
            and cache.solves.stamp(config) is not None)


def _complete_profile(config: RunConfig, cache: Cache, loaded: LoadedRun, on_event: OnEvent,
                      locked: bool) -> LoadedRun:
    """``loaded`` with the profile its profile stage never finished: from the stored solve and the
    cached teacher, under the run's lock (unless the caller holds it already)."""
    final = cache.run_dir(config)
    wait = lambda: emit(on_event, "waiting", "run", metrics={"message": WAITING + "run"})  # noqa: E731
    with contextlib.nullcontext() if locked else entry_lock(final, wait):
        again, _ = cache.load(config)  # another process may have completed it meanwhile
        if again is None or not _profile_pending(config, cache, again.record):
            return again or loaded
        device = resolve_device(config.device)
        with cpu_threads(device):
            stored, solve = cache.solves.profile(config), cache.solves.load(config)
            try:
                found = cache.teacher(config)
            except RunFileError:  # damaged: the next fresh run replaces it
                found = None
            if stored is None and (solve is None or found is None):
                return again  # the solve or the teacher is gone: the run stays as it is
            solved = None
            if stored is None:
                solved = model_for(config).to(device)
                solved.load_state_dict(solve[0])
                solved = _frozen(solved)
            train, test = load_data(config, device)
            teacher = _frozen(found[0].to(device)) if found is not None else None
            _add_profile(config, cache, final, on_event, stored, solved, teacher, len(train), test)
        return load_run(final)
