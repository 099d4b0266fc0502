"""Runs for the pages: start a background job, follow it live, look up finished runs.

Each page owns one job slot in the session, and names its job's hold in the page's address
(``?live=<token>``): a reloaded page reads it back and follows the same job (:func:`current`).
While a job is queued, the fragment says how many runs are ahead of it and what the run computing
ahead of it is doing (its method, data, model, stage and progress). While a job runs, only a fragment
re-renders (every :data:`REFRESH` seconds): stage progress bars and a Stop button;
the page's live chart, whose Plotly figure costs far more to build, in a second one
every :data:`CHART_REFRESH` seconds; the rest of the page and the sidebar stay usable. The run itself computes in a worker process
(:mod:`app.jobs`), so these refreshes never slow it. When the job ends, the
fragment reruns the whole page, which then draws results read from the engine's
on-disk cache, so a finished run survives restarts.

Every poll marks the job followed by this page (:meth:`app.jobs.Watch.view`); while the session
has a job running, :func:`keep_following` marks it from whichever page the tab shows. A job that no
open tab has marked for ``$DEADWOOD_ABANDON_AFTER`` seconds (30: its tabs were closed) is stopped as
Stop stops it, and the queue moves on (:mod:`app.jobs.run_queue`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

import deadwood
from deadwood.errors import RunFileError
from deadwood.stages import stage as stage_of
from deadwood.storage.cache import Cache
from deadwood.storage.record import LoadedRun, RunRecord

from . import jobs
from .formatting import plain
from .jobs import Ahead, JobView, StageProgress, Watch

REFRESH = 0.5  # seconds between live updates of the progress bars
# seconds between redraws of a page's live chart: building its figure takes ~70 ms (measured on the multiplier
# chart at 37 epochs), and a fragment must redraw all it shows on every run (what it skips vanishes)
CHART_REFRESH = 2.0
KEEP_REFRESH = 5.0  # seconds between the marks of a session's running jobs from pages that do not show them

jobs.warm()  # once per server: start workers now, so the first Run does not wait ~2 s for torch


def current(slot: str) -> Watch | None:
    """The job this page follows: this session's, or after a reload the one its address names."""
    job = st.session_state.get(f"job:{slot}")
    if job is None:
        job = jobs.find(st.query_params.get(slot))
        if job is not None:
            st.session_state[f"job:{slot}"] = job
    return job


def busy(slot: str) -> bool:
    job = current(slot)
    return job is not None and job.view().running


def start(slot: str, configs: Sequence[deadwood.RunConfig], sweep: bool = False) -> Watch:
    """Start ``configs`` (fixed now: later widget changes cannot reach them) in the background,
    or follow the job another page already runs on the same configurations.

    A ``sweep`` (a grid, no live curves) on a server started with ``DEADWOOD_WORKERS`` > 1 (a local
    Ray with that many workers) or ``DEADWOOD_RAY_ADDRESS`` (a cluster) is computed on Ray
    (:func:`app.jobs.ray_grid.batch_runner`); otherwise in the server's worker process."""
    from .jobs import ray_grid  # imports the sweep executor (not Ray): only a sweep needs it

    runner = ray_grid.batch_runner(configs) if sweep and ray_grid.requested() else None
    job = jobs.watch(configs, runner=runner, holding=current(slot))
    st.session_state[f"job:{slot}"] = job
    st.query_params[slot] = job.token  # a reload finds it again
    return job


def keep_following() -> None:
    """Mark every job this session follows (each page's slot) as followed, every few seconds, while
    one of them runs: a tab that moved to another page still follows the run it started there, and
    only closing the tab lets the run be stopped as abandoned. Called by the entry point on every page."""
    holds = [v for k, v in st.session_state.items() if k.startswith("job:") and isinstance(v, Watch)]
    if not any(h.view().running for h in holds):
        return
    try:
        every = min(KEEP_REFRESH, jobs.abandon_after() / 3)
    except deadwood.DeadwoodError:  # the job itself fails with that message
        every = KEEP_REFRESH

    @st.fragment(run_every=every)
    def mark():
        for hold in holds:
            hold.view()

    with st.sidebar:
        mark()


def ahead_text(before: Ahead) -> str:
    """What the run computing ahead of a queued one is doing: its method, data, model, stage, progress."""
    cfg, p = before.config, before.progress
    if isinstance(cfg, jobs.Analysis):  # an analysis job: its own label says what it computes
        text = f"Computing now: {plain(cfg.label)}"
    else:
        text = (f"Computing now: **{cfg.method}** at κ = {cfg.sparsity:g}, ε = {cfg.epsilon:g} on "
                f"{cfg.dataset}/{cfg.model}")
    if before.count > 1:
        text += f", run {before.index + 1} of {before.count}"
    if before.stage is None:
        return text + f" · starting ({before.seconds:.0f} s)"
    label = (cfg.stages().get(before.stage, before.stage) if isinstance(cfg, jobs.Analysis)
             else stage_of(before.stage).label)
    step = {"cached": "from the cache", "done": "done"}.get(
        p.state, count_text(p, "epoch") if p.total else "starting")
    return text + f" · {label}: {step} ({p.fraction:.0%}, {before.seconds:.0f} s so far)"


def count_text(p: StageProgress, unit: str) -> str:
    """How far a running stage has got: its units done and, within a slow epoch, its batches."""
    text = f"{unit} {p.done} of {p.total}"
    return text + (f" (batch {p.step} of {p.steps} into {unit} {p.done + 1})" if p.steps else "")


def queued_text(ahead: int) -> str:
    try:
        limit = jobs.max_runs()
    except deadwood.DeadwoodError:  # the job itself fails with that message
        limit = 1
    return (f"Queued behind {ahead} run{'' if ahead == 1 else 's'}: it starts as soon as a place is free "
            f"(this server computes {limit} run{'' if limit == 1 else 's'} at a time, `DEADWOOD_MAX_RUNS`).")


def follow(job: Watch, live: Callable[[JobView], None] | None = None) -> None:
    """Draw the job's progress, refreshed in place until it ends; then rerun the page.

    ``live(view)`` draws the page's live chart, in its own fragment that refreshes
    every :data:`CHART_REFRESH` seconds rather than every :data:`REFRESH`. Once the run is
    published (its sparsity profile, the last stage, has begun) the whole page reruns once, so it
    can draw the run's results while the profile's bar goes on (``JobView.published``).
    """
    seen = job.view().published

    @st.fragment(run_every=REFRESH)
    def progress():
        view = job.view()
        if not view.running or (not seen and view.published):
            st.rerun()  # the whole page: it now draws the results
        if view.state == "queued":
            st.info(queued_text(view.ahead), icon=":material/hourglass_top:")
            if view.before is not None:  # words, not a bar: the bars below are this page's run
                st.caption(ahead_text(view.before))
        if view.waiting:
            st.info(f"{view.waiting[0].upper()}{view.waiting[1:]}; its result is served here when it ends.",
                    icon=":material/lock_clock:")
        cfg = view.config
        head = f"{'Queued' if view.state == 'queued' else 'Running'} **{cfg.method}** at κ = {cfg.sparsity:g}, ε = {cfg.epsilon:g} on {cfg.dataset}/{cfg.model}"
        if len(view.configs) > 1:
            head = f"Run {view.index + 1} of {len(view.configs)}: " + head[0].lower() + head[1:]
            st.progress(len(view.finished) / len(view.configs), text=f"{len(view.finished)} of "
                        f"{len(view.configs)} runs done")
        st.markdown(f"{head} · {view.seconds:.0f} s")
        for notice in view.notices:
            st.warning(f"{plain(notice)}; computing it again", icon=":material/build:")
        for stage, p in view.stages.items():
            label, unit = stage_of(stage).label, stage_of(stage).unit
            text = {"pending": f"{label}: waiting", "cached": f"{label}: from the cache",
                    "done": f"{label}: done"}.get(p.state, f"{label}: {count_text(p, unit)}")
            st.progress(p.fraction, text=text)
        st.button("Stop", key="stop", on_click=job.stop, icon=":material/stop_circle:",
                  help="stops at the next progress report: the next epoch, or within about a second of a "
                       "slow one; a finished teacher stays cached")

    @st.fragment(run_every=CHART_REFRESH)
    def chart():
        live(job.view())

    progress()
    if live is not None:
        chart()


def outcome(job: Watch | None) -> None:
    """Say how the last job ended when it did not simply finish."""
    if job is None:
        return
    view = job.view()
    if view.state == "stopped":
        done = len(view.finished)
        why = ("" if view.abandoned_after is None else
               f": no page followed it for {view.abandoned_after:g} s (its tabs were closed)")
        st.warning(f"Stopped after {view.seconds:.0f} s" + (f" ({done} of {len(view.configs)} runs finished)"
                                                             if len(view.configs) > 1 else "") + why
                   + ". Finished stages stay cached (the teacher, earlier runs); press Run to go on.")
    elif view.state == "failed":
        st.error(plain(view.error))
        if view.details:
            with st.expander("Details (please report this)"):
                st.code(view.details)


def record(config: deadwood.RunConfig) -> RunRecord | None:
    """The finished run of ``config`` from the on-disk cache, or None: also when its entry is
    damaged (:func:`damaged` says how), so a bad file never takes a page down. Reads the record
    only (no model): cheap enough for every rerun."""
    return Cache().record(config)[0]


def damaged(config: deadwood.RunConfig) -> str | None:
    """Why the cached run of ``config`` cannot be read (one line), or None when it can or is absent."""
    return Cache().record(config)[1]


def loaded(config: deadwood.RunConfig) -> LoadedRun:
    """The finished run of ``config`` with its models; RunFileError saying why when its entry is
    damaged or absent (pages show it, with a button that recomputes)."""
    cache = Cache()
    run, why = cache.load(config)
    if run is None:
        raise RunFileError(why or f"no run of this configuration in the cache at {cache.root}")
    return run


def discard(config: deadwood.RunConfig) -> None:
    """Remove the cache entry of ``config`` (its run folder only), so the next run computes it afresh."""
    Cache().discard(config)


def profile(config: deadwood.RunConfig) -> dict | None:
    """The sparsity profile of the stored Stage 1 solve that ``config`` would start from (any κ), or
    None: no solve stored yet, or a method without one. Kept in memory until the solve is written
    again, so moving the κ slider redraws at once."""
    if config is None:
        return None
    stamp = Cache().solves.stamp(config) if config.stores_solve() else None
    return None if stamp is None else _profile(config, stamp)


@st.cache_data(max_entries=16, show_spinner=False)
def _profile(config: deadwood.RunConfig, stamp: int) -> dict | None:
    return Cache().profile(config)


def run_dir(config: deadwood.RunConfig) -> Path:
    """The run directory of ``config`` in the cache: what the deployment panel and the explorer open."""
    return Cache().run_dir(config)


def model_file(config: deadwood.RunConfig) -> Path:
    """The pruned checkpoint of ``config``'s cached run, for downloading."""
    return Cache().model_file(config)


def baselines(config: deadwood.RunConfig) -> dict[str, RunRecord]:
    """Cached runs of every other method at the same settings (label -> record)."""
    out = {}
    for name in deadwood.method_names():
        if name != config.method:
            other = record(deadwood.with_updates(config, method=name))
            if other is not None:
                out[f"{name} (cached)"] = other
    return out
