"""Robustness explorer: attack a finished run's dense teacher and pruned model side by side."""
import streamlit as st

from deadwood_app import analysis, charts, runs, show, widgets
from deadwood import dataset_info

st.title("Robustness explorer")
with st.sidebar:
    choice = widgets.single_run()
    pressed = widgets.run_button(choice, busy=runs.busy("explore"))
if choice.problem:
    st.error(choice.problem, icon=":material/block:")
attack, epsilon, samples = widgets.attack_widgets(choice.config)
config = choice.config
if pressed and runs.record(config) is None:
    runs.start("explore", choice.configs)
    st.rerun()
if runs.busy("explore"):
    runs.follow(runs.current("explore"))
else:
    runs.outcome(runs.current("explore"))
    record = runs.record(config) if config else None
    if config and record is None:
        st.info("This configuration has not been run yet: press **Run** to prune it first.")
    if record is not None:
        folder, classes = str(runs.run_dir(config)), list(dataset_info(config.dataset).classes)
        with st.spinner(f"Attacking both models with {attack}..."):
            shown, pair, curves = analysis.explore(folder, config, attack, epsilon, samples)
        show.pair_metrics(pair, config.method)
        show.figure(charts.adversarial_examples_figure(shown, classes), "adversarial-examples")
        left, right = st.columns(2)
        with left:
            show.figure(charts.class_recall_figure(pair, classes, config.method), "class-recall")
        with right:
            show.figure(charts.security_figure(curves, epsilon, config.method), "security-curve")
        for message in pair["teacher"]["warnings"] + pair["pruned"]["warnings"]:
            st.warning(f"Sanity check: {message}", icon=":material/warning:")
