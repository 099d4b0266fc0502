"""Analysis results for the pages (the lenses of *Inside the network*, the robustness explorer):
served at once from their cache file, else computed by an analysis job (:mod:`app.jobs.analysis`)
that the page follows like a run, in the same job slot: progress bars, Stop, the queue, and after a
reload the same job (its hold named in the address). The page script itself only reads files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

import deadwood
from deadwood.stages import stage as stage_of
from deadwood.storage.files import default_cache_dir

from . import runs
from .formatting import plain
from .jobs import Analysis, Watch, analysis


def is_analysis(job: Watch | None) -> bool:
    return job is not None and isinstance(job.configs[0], Analysis)


def stored(task: Analysis):
    """``task``'s result from its cache file, or None when it has none (or an unreadable one)."""
    path = task.path(default_cache_dir())
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _stored(str(path), stamp)


@st.cache_data(max_entries=16, show_spinner=False)
def _stored(path: str, stamp: int):
    return analysis.load(Path(path))


def result(slot: str, task: Analysis, again: bool, check: Sequence[deadwood.RunConfig] = ()):
    """``task``'s result, from its cache file; else None, after starting its job in ``slot`` and
    drawing its progress (:func:`follow`). After a stop or a failure the job is not started again
    until ``again`` (Run pressed). ``check``: the configurations whose runs the analysis loads;
    they are loaded once here before the job starts, so that a damaged run raises
    :class:`deadwood.RunFileError` where the page can offer to compute it again."""
    found = stored(task)
    if found is not None:
        return found
    job = runs.current(slot)
    if job is not None and job.configs[0].key() == task.key() and not again:
        view = job.view()
        if view.running:
            follow(job)
        elif view.state == "done":  # computed, yet its file does not load: say so rather than loop
            st.error(f"The stored result of {task.label} could not be read; press **Run** to compute it again.",
                     icon=":material/broken_image:")
        return None
    for config in check:
        runs.loaded(config)
    follow(runs.start(slot, [task]), settle=True)
    return None


def follow(job: Watch, settle: bool = False) -> None:
    """Draw the job's progress and Stop, refreshed in place until it ends; then rerun the page.

    ``settle``: the job started in this script run, after the page drew its choices enabled; the
    first refresh reruns the whole page, which draws them disabled. Not at once (``st.rerun`` here):
    Streamlit drops the value of a widget that turns disabled in a rerun of the script run that
    received it, so the choice that started the job would fall back to its previous value."""
    if not is_analysis(job):
        runs.follow(job)
        return
    task: Analysis = job.configs[0]
    labels = task.stages()
    refreshes = [0]

    @st.fragment(run_every=runs.REFRESH)
    def progress():
        view = job.view()
        if not view.running or (settle and refreshes[0]):
            st.rerun()  # the whole page: it now draws the result, or its choices disabled
        refreshes[0] += 1
        if view.state == "queued":
            st.info(runs.queued_text(view.ahead), icon=":material/hourglass_top:")
        if view.waiting:
            st.info(f"{view.waiting[0].upper()}{view.waiting[1:]}; computing goes on when it ends.",
                    icon=":material/lock_clock:")
        st.markdown(f"{'Queued' if view.state == 'queued' else 'Computing'}: {task.label} · {view.seconds:.0f} s")
        for notice in view.notices:
            st.warning(f"{notice}; computing it again", icon=":material/build:")
        for name, p in view.stages.items():
            label = labels.get(name) or stage_of(name).label
            text = {"pending": f"{label}: waiting", "cached": f"{label}: from the cache",
                    "done": f"{label}: done"}.get(p.state, f"{label}: {p.done} of {p.total}")
            st.progress(p.fraction, text=text)
        st.button("Stop", key="stop", on_click=job.stop, icon=":material/stop_circle:",
                  help="stops at the next step; press Run to compute it again")

    progress()


def outcome(job: Watch | None) -> None:
    """Say how the last job ended when it did not simply finish."""
    if not is_analysis(job):
        runs.outcome(job)
        return
    view = job.view()
    if view.state == "stopped":
        st.warning(f"Stopped after {view.seconds:.0f} s: {job.configs[0].label} was not computed. Press **Run** "
                   "to compute it.")
    elif view.state == "failed":
        st.error(plain(view.error))
        if view.details:
            with st.expander("Details (please report this)"):
                st.code(view.details)
