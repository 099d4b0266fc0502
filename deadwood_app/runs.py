"""Runs for the pages: start a background job, follow it live, look up finished runs.

Each page owns one job slot in the session. While a job runs, only a fragment
re-renders (every :data:`REFRESH` seconds): stage progress bars and a Stop button;
the page's live chart, whose Plotly figure costs far more to build, in a second one
every :data:`CHART_REFRESH` seconds; the rest of the page and the sidebar stay usable. The run itself computes in a worker process
(:mod:`deadwood_app.jobs`), so these refreshes never slow it. When the job ends, the
fragment reruns the whole page, which then draws results read from the engine's
on-disk cache, so a finished run survives restarts.
"""
from __future__ import annotations

from typing import Callable, Sequence

import streamlit as st

import deadwood
from deadwood.pipeline import Cache
from deadwood.record import RunRecord, read_record
from deadwood.stages import stage as stage_of

from . import jobs
from .jobs import JobView, Watch

REFRESH = 0.5  # seconds between live updates of the progress bars
# seconds between redraws of a page's live chart: building its figure takes ~70 ms (measured on the multiplier
# chart at 37 epochs), and a fragment must redraw all it shows on every run (what it skips vanishes)
CHART_REFRESH = 2.0

jobs.warm()  # once per server: start workers now, so the first Run does not wait ~2 s for torch


def current(slot: str) -> Watch | None:
    return st.session_state.get(f"job:{slot}")


def busy(slot: str) -> bool:
    job = current(slot)
    return job is not None and job.view().running


def start(slot: str, configs: Sequence[deadwood.RunConfig]) -> Watch:
    """Start ``configs`` (fixed now: later widget changes cannot reach them) in the background,
    or follow the job another page already runs on the same configurations."""
    job = jobs.watch(configs)
    st.session_state[f"job:{slot}"] = job
    return job


def follow(job: Watch, live: Callable[[JobView], None] | None = None) -> None:
    """Draw the job's progress, refreshed in place until it ends; then rerun the page.

    ``live(view)`` draws the page's live chart, in its own fragment that refreshes
    every :data:`CHART_REFRESH` seconds rather than every :data:`REFRESH`.
    """

    @st.fragment(run_every=REFRESH)
    def progress():
        view = job.view()
        if not view.running:
            st.rerun()  # the whole page: it now draws the results
        cfg = view.config
        head = f"Running **{cfg.method}** at κ = {cfg.sparsity:g}, ε = {cfg.epsilon:g} on {cfg.dataset}/{cfg.model}"
        if len(view.configs) > 1:
            head = f"Run {view.index + 1} of {len(view.configs)}: " + head[0].lower() + head[1:]
            st.progress(len(view.finished) / len(view.configs), text=f"{len(view.finished)} of "
                        f"{len(view.configs)} runs done")
        st.markdown(f"{head} · {view.seconds:.0f} s")
        for stage, p in view.stages.items():
            label = stage_of(stage).label
            text = {"pending": f"{label}: waiting", "cached": f"{label}: from the cache",
                    "done": f"{label}: done"}.get(p.state, f"{label}: epoch {p.done} of {p.total}")
            st.progress(p.fraction, text=text)
        st.button("Stop", key="stop", on_click=job.stop, icon=":material/stop_circle:",
                  help="stops at the next epoch; a finished teacher stays cached")

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
        st.warning(f"Stopped after {view.seconds:.0f} s" + (f" ({done} of {len(view.configs)} runs finished)"
                                                             if len(view.configs) > 1 else "")
                   + ". Finished stages stay cached (the teacher, earlier runs); press Run to go on.")
    elif view.state == "failed":
        st.error(view.error)
        if view.details:
            with st.expander("Details (please report this)"):
                st.code(view.details)


def record(config: deadwood.RunConfig) -> RunRecord | None:
    """The finished run of ``config`` from the on-disk cache, or None."""
    cache = Cache()
    if not cache.has_run(config):
        return None
    return read_record(cache.run_dir(config))


def run_dir(config: deadwood.RunConfig):
    return Cache().run_dir(config)


def baselines(config: deadwood.RunConfig) -> dict[str, RunRecord]:
    """Cached runs of every other method at the same settings (label -> record)."""
    out = {}
    for name in deadwood.method_names():
        if name != config.method:
            other = record(deadwood.with_updates(config, method=name))
            if other is not None:
                out[f"{name} (cached)"] = other
    return out
