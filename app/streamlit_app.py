"""Deadwood Lab: the app's entry point (`streamlit run app/streamlit_app.py`).

Pages live in ``app/views/``; adding one is one line in ``PAGES``.

Settings: the app's ``.streamlit/config.toml`` sits at the repository root, and Streamlit
reads it only when started from there (it looks in the working directory). Started
elsewhere, pass its settings as flags (``--runner.postScriptGC false``); runs still compute
in a worker process, so a server without them spends more CPU on refreshes but does not
hold the run up.
"""
import streamlit as st

from app import runs

# Not a folder called `pages/`: Streamlit treats one beside the main script as a legacy multipage
# app, and a shared link such as /explorer opened first on a fresh server then ran that file alone,
# without this entry point. Each page's URL path is its file name (/walkthrough, /compare, /explorer,
# /inside; / is Live pruning).
PAGES = [
    st.Page("views/live.py", title="Live pruning", icon=":material/content_cut:", default=True),
    st.Page("views/walkthrough.py", title="Walkthrough", icon=":material/school:"),
    st.Page("views/compare.py", title="Compare methods", icon=":material/compare_arrows:"),
    st.Page("views/explorer.py", title="Robustness explorer", icon=":material/shield:"),
    st.Page("views/inside.py", title="Inside the network", icon=":material/biotech:"),
]
# An emoji favicon is drawn by the browser itself; a ":material/...:" one is fetched from
# fonts.gstatic.com, which fails offline.
ICON = "🌲"

st.set_page_config(page_title="Deadwood Lab", page_icon=ICON, layout="wide")
page = st.navigation(PAGES)
st.sidebar.caption("Deadwood Lab · robust global pruning")
runs.keep_following()  # a run started on one page keeps going while the tab shows another
page.run()
