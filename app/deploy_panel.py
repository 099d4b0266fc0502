"""The "What the cut buys" panel: a finished run's network executed dense, as CSR and BCR-compacted,
measured on demand (a button) and kept in the run's record, so it is computed once per run."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from deadwood.deploy.measure import deployment
from deadwood.errors import DeadwoodError
from deadwood.storage.record import read_record

from . import charts_deploy as cd
from .formatting import plain


def what_the_cut_buys(folder: Path) -> None:
    """Latency and size per execution form, and the crossover, for the run in ``folder``."""
    st.subheader("What the cut buys")
    dep = read_record(folder).deployment
    if not dep:
        st.caption("Zeros in a dense tensor cost as much as any other weight. Measure what the cut buys: the same "
                   "weights run dense, as sparse CSR and (for a BCR cut) BCR-compacted, timed at batch 1 and 256 "
                   "on this machine, with a sweep that finds where sparse execution overtakes dense. "
                   "It takes some seconds; the result is kept with the run.")
        if not st.button("Measure", key="deploy_measure", icon=":material/speed:"):
            return
        try:
            with st.spinner("Timing each execution form (the machine's load moves these numbers)..."):
                dep = deployment(folder)
        except DeadwoodError as e:
            st.error(plain(e))
            return
    st.caption(f"CPU {dep['device_name']}, {dep['threads']} torch thread(s), load average {dep['load_average']}; "
               f"median of {dep['repeats']} timed calls after {dep['warmup']} warm-up rounds, forms taking turns. "
               f"Every speed-up is a ratio against dense measured in the same process; multiply-accumulates are a "
               f"count of arithmetic, not a speed. Predictions checked on {dep['test_samples']} test samples.")
    st.dataframe(cd.form_table(dep), hide_index=True, width="stretch")
    notes = cd.form_notes(dep)
    if notes:
        st.caption("\n".join(f"- {plain(n)}" for n in notes))
    from .show import figure

    figure(cd.latency_figure(dep), "deploy-latency")
    left, right = st.columns(2)
    with left:
        if dep.get("sizes"):
            figure(cd.size_figure(dep), "deploy-size")
    with right:
        if dep.get("crossover"):
            figure(cd.crossover_figure(dep), "deploy-crossover")
    if st.button("Measure again", key="deploy_again", type="tertiary", icon=":material/refresh:"):
        with st.spinner("Timing each execution form..."):
            deployment(folder, force=True)
        st.rerun()
