"""Compare methods: a grid of methods x sparsities against the same teacher; cached runs come back at once."""
import streamlit as st

try:
    from deadwood_app import charts, runs, show, widgets
except ModuleNotFoundError:  # opened by URL on a fresh server, before the entry point ran (legacy pages/ mode)
    st.switch_page("streamlit_app.py")

st.title("Compare methods")
job = runs.current("compare")
with st.sidebar:
    choice = widgets.sweep_run()
    pressed = widgets.run_button(choice, busy=runs.busy("compare"))
if choice.problem:
    st.error(choice.problem, icon=":material/block:")


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
    percent = {name: st.column_config.NumberColumn(format="percent") for name in rows[0] if name != "method"}
    percent["seconds"] = st.column_config.NumberColumn(format="%.1f")
    st.dataframe(rows, hide_index=True, column_config=percent)

missing = [c for c in choice.configs if runs.record(c) is None]
if pressed and missing:
    runs.start("compare", missing, sweep=True)  # on Ray when the server has workers (runs.start)
    st.rerun()  # redraw the sidebar with Run disabled while the job goes
if runs.busy("compare"):
    runs.follow(job, comparison)  # the charts grow as runs finish
else:
    runs.outcome(job)
    if missing:
        st.info(f"{len(choice.configs) - len(missing)} of {len(choice.configs)} runs are cached; press **Run** "
                f"to compute the other {len(missing)} (they share one teacher).")
    comparison()
