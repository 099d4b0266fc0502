"""Robustness explorer: attack a finished run's dense teacher and pruned model side by side."""
import streamlit as st

from app import captions, charts_attacks, computed, explorer_attacks, links, runs, show, widgets
from app.formatting import plain
from deadwood import RunFileError

st.title("Robustness explorer")
links.check()
busy = runs.busy("explore")  # once: the job may end while the page draws
choice, pressed = widgets.sidebar(widgets.single_run, busy=busy)
if choice.problem:
    st.error(plain(choice.problem), icon=":material/block:")
recompute = show.damaged(choice.configs, busy=busy)
attack, epsilon, samples = widgets.attack_widgets(choice.config, disabled=busy)
config = choice.config
if (pressed or recompute) and runs.record(config) is None:
    runs.start("explore", choice.configs)
    st.rerun()
if busy:  # a run, or the attacks' job
    computed.follow(runs.current("explore"))
else:
    computed.outcome(runs.current("explore"))
    record = runs.record(config) if config else None
    if config and record is None and not runs.damaged(config):
        st.info("This configuration has not been run yet: press **Run** to prune it first.")
    if record is not None:
        classes = list(config.data_info().classes)
        try:  # from the cache, else a job the page follows (st.rerun, or None when stopped or failed)
            found = computed.result("explore", explorer_attacks.task(config, attack, epsilon, samples),
                                    again=pressed, check=[config])
        except RunFileError as e:  # a damaged checkpoint in the cache: say so, offer to recompute
            if show.unloadable(e, choice.configs, busy=False):
                runs.start("explore", choice.configs)
                st.rerun()
            st.stop()
        if found is None:
            st.stop()
        shown, pair, curves = found["examples"], found["recall"], found["security"]
        show.pair_metrics(pair, config.method)
        st.caption(captions.explorer_samples(pair, record))
        show.figure(charts_attacks.adversarial_examples_figure(shown, classes), "adversarial-examples")
        # full width: ten classes times four bars need it
        show.figure(charts_attacks.class_recall_figure(pair, classes, config.method), "class-recall")
        show.figure(charts_attacks.security_figure(curves, epsilon, config.method), "security-curve")
        for message in pair["teacher"]["warnings"] + pair["pruned"]["warnings"]:
            st.warning(f"Sanity check: {plain(message)}", icon=":material/warning:")
