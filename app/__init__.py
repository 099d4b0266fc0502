"""Deadwood Lab's Streamlit app (``streamlit run app/streamlit_app.py``): widgets build configurations,
the engine computes, charts show the records.

Pages live in ``views/``; ``jobs/`` computes every run outside the page; the other modules are
shared by the pages. It may import the engine (``deadwood``) and Streamlit; the engine never imports
it. ``jobs/``, the ``chart*`` modules and ``formatting`` import no Streamlit, so they are tested plainly.
"""
