"""Compare methods: a grid of methods x sparsities against the same teacher; cached runs come back at once."""
import streamlit as st

from app import captions, charts, links, runs, show, widgets
from app.formatting import plain

st.title("Compare methods")
links.check()
job = runs.current("compare")
busy = runs.busy("compare")  # once: the job may end while the page draws
choice, pressed = widgets.sidebar(widgets.sweep_run, busy=busy)
if choice.problem:
    st.error(plain(choice.problem), icon=":material/block:")
recompute = show.damaged(choice.configs, busy=busy)


def comparison(_view=None):
    records = [r for r in map(runs.record, choice.configs) if r is not None]
    if not records:
        return
    eps = choice.configs[0].epsilon
    teacher = records[0].teacher
    left, right = st.columns(2)
    with left:
        show.figure(charts.pareto_figure(records, eps, teacher), "pareto")
    with right:
        show.figure(charts.sparsity_sweep_figure(records, eps, teacher), "robust-vs-sparsity")
    rows = charts.comparison_rows(records, eps)
    st.caption(show.budget_note(choice.configs))
    show.table(rows, percent=[n for n in rows[0] if n not in ("method", "seconds")], seconds=("seconds",),
               help={"seconds": charts.SECONDS_HELP})
    captions.shared_work_caption(records)

missing = [c for c in choice.configs if runs.record(c) is None]
if (pressed or recompute) and missing:
    runs.start("compare", missing, sweep=True)  # on Ray when the server has workers (runs.start)
    st.rerun()  # redraw the sidebar with Run disabled while the job goes
if busy:
    runs.follow(job, comparison)  # the charts grow as runs finish
else:
    runs.outcome(job)
    if missing:
        st.info(f"{len(choice.configs) - len(missing)} of {len(choice.configs)} runs are cached; press **Run** "
                f"to compute the other {len(missing)} (they share one teacher).")
    comparison()
