"""Live pruning: one configuration, run with live multipliers, then every chart of its record."""
import streamlit as st

from deadwood_app import charts, runs, show, widgets

st.title("Live pruning")
job = runs.current("live")
busy = runs.busy("live")  # once: the job may end while the page draws
choice, pressed = widgets.sidebar(widgets.single_run, busy=busy)
if choice.problem:
    st.error(choice.problem, icon=":material/block:")
recompute = show.damaged(choice.configs, busy=busy)
if pressed or recompute:
    runs.start("live", choice.configs)
    st.rerun()  # redraw the sidebar with Run disabled while the job goes


def live_chart(view):
    if charts.dual_entries(view.history):
        st.plotly_chart(charts.multipliers_figure(view.history), key="live_multipliers")
    elif view.history:
        st.plotly_chart(charts.training_figure(view.history), key="live_training")


if busy:
    runs.follow(job, live_chart)
else:
    runs.outcome(job)
    config = choice.config
    record = runs.record(config) if config else None
    if record is None and job is not None and job.view().state == "done":
        config = job.configs[0]
        record = runs.record(config)
        st.info("Showing the last run; the settings in the sidebar have not been run yet: press **Run**.")
    if record is None:
        if not (config and runs.damaged(config)):  # a damaged entry has its own message above
            st.info("Press **Run** in the sidebar. A fresh run on the embedded digits takes seconds; "
                    "repeating a configuration is instant.")
    else:
        show.run_report(record, config.epsilon, runs.baselines(config), runs.run_dir(config))
        show.what_the_cut_buys(runs.run_dir(config))
show.about_the_method()
