"""Deadwood Lab: the app's entry point (`streamlit run app/streamlit_app.py`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

import deadwood  # noqa: E402

st.set_page_config(page_title="Deadwood Lab", layout="wide")
st.title("Deadwood Lab")
st.caption("Robust global pruning (Deadwooding), on the embedded digits data.")
sparsity = st.sidebar.slider("Target sparsity", 0.5, 0.995, 0.95, key="sparsity")
epsilon = st.sidebar.slider("Attack epsilon", 0.0, 0.3, 0.1, step=0.01, key="epsilon")
if st.sidebar.button("Run", key="run"):
    with st.spinner("pruning..."):
        r = deadwood.run(deadwood.RunConfig(sparsity=sparsity, epsilon=epsilon)).record
    st.metric("clean accuracy", f"{r.clean_accuracy:.3f}")
    st.metric("accuracy right after the cut", f"{r.one_shot_accuracy:.3f}")
    st.json(r.layer_sparsity)
