"""Deadwood Lab: the app's entry point (`streamlit run app/streamlit_app.py`).

Pages live in ``app/pages/``; adding one is one line in ``PAGES``.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `streamlit run` puts app/ on the path, not the repository

import streamlit as st  # noqa: E402

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
