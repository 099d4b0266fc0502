"""Deadwood Lab: the app's entry point (`streamlit run deadwood_app/streamlit_app.py`).

Pages live in ``deadwood_app/pages/``; adding one is one line in ``PAGES``.

Settings: the app's ``.streamlit/config.toml`` sits at the repository root, and Streamlit
reads it only when started from there (it looks in the working directory). Started
elsewhere, pass its settings as flags (``--runner.postScriptGC false``); runs still compute
in a worker process, so a server without them spends more CPU on refreshes but does not
hold the run up.
"""
import streamlit as st

PAGES = [
    st.Page("pages/live.py", title="Live pruning", icon=":material/content_cut:", default=True),
    st.Page("pages/compare.py", title="Compare methods", icon=":material/compare_arrows:"),
    st.Page("pages/explorer.py", title="Robustness explorer", icon=":material/shield:"),
    st.Page("pages/inside.py", title="Inside the network", icon=":material/biotech:"),
]

st.set_page_config(page_title="Deadwood Lab", page_icon=":material/forest:", layout="wide")
page = st.navigation(PAGES)
st.sidebar.caption("Deadwood Lab · robust global pruning")
page.run()
