"""Live pruning: one configuration, run with live multipliers, then every chart of its record."""
import streamlit as st

from app import captions, charts, deploy_panel, links, runs, show, solve_panel, widgets
from app.charts_profile import profile_figure
from app.formatting import plain

st.title("Live pruning")
links.check()
job = runs.current("live")
busy = runs.busy("live")  # once: the job may end while the page draws
choice, pressed = widgets.sidebar(widgets.single_run, busy=busy)
if choice.problem:
    st.error(plain(choice.problem), icon=":material/block:")
recompute = show.damaged(choice.configs, busy=busy)
if pressed or recompute:
    runs.start("live", choice.configs)
    st.rerun()  # redraw the sidebar with Run disabled while the job goes


def live_chart(view):
    if charts.dual_entries(view.history):
        st.plotly_chart(charts.multipliers_figure(view.history), key="live_multipliers")
        captions.multipliers_caption()
    elif view.history:
        st.plotly_chart(charts.training_figure(view.history), key="live_training")
    profile = runs.profile(view.config)  # there as soon as the solve's first run has its profile
    if profile:
        st.plotly_chart(profile_figure(profile, view.config.sparsity, view.config.method), key="live_profile")


if busy:
    published = job.view().published  # then the record's own charts below replace the live one
    runs.follow(job, None if published else live_chart)
    view = job.view()
    record = runs.record(view.config) if published else None
    if record is not None:  # published before its sparsity profile, whose bar goes on above
        show.run_report(record, view.config.epsilon, runs.baselines(view.config), runs.model_file(view.config))
else:
    runs.outcome(job)
    config = choice.config
    record = runs.record(config) if config else None
    profile = runs.profile(config) if record is None and config else None
    if profile:  # the solve is stored: the cut at this κ answers at once, before any fine-tuning
        show.one_shot_preview(profile, config.sparsity, config.method)
        solve_panel.at_kappa(config)  # per-layer sparsity, dead wood and masks of the same cut
    elif record is None and job is not None and job.view().state == "done":
        config = job.configs[0]
        record = runs.record(config)
        st.info("Showing the last run; the settings in the sidebar have not been run yet: press **Run**.")
    if record is not None:
        show.run_report(record, config.epsilon, runs.baselines(config), runs.model_file(config))
        deploy_panel.what_the_cut_buys(runs.run_dir(config))
    elif not profile and not (config and runs.damaged(config)):  # a damaged entry has its own message
        captions.start_banner(choice, ended=job is not None and job.view().state in ("stopped", "failed"))
show.about_the_method()
