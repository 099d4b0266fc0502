"""Captions that say how to read the solve's charts, each linked to the walkthrough's step that
tells it (the link carries the view's settings: :func:`app.links.href`)."""
from __future__ import annotations

import streamlit as st

from . import links


def step_link(step: int, text: str) -> str:
    """A Markdown link to walkthrough step ``step`` carrying this view's settings."""
    return f"[{text}]({links.href('walkthrough', step=step)})"


def multipliers_caption() -> None:
    st.caption("Each λ rises while its constraint is violated (g > 0) and stops once it holds. λ still rising, "
               "with constraints violated at the last epoch, means the solve traded some of the teacher's "
               "robustness for sparsity; the fine-tune wins it back "
               f"({step_link(3, 'walkthrough, step 3')}, {step_link(5, 'step 5')}). The solve does not depend on "
               "κ: this chart is the same at every κ.")


def epsilon_caption(epsilon: float) -> None:
    st.caption(f"ε = {epsilon:g} is the run's training and evaluation budget: the teacher, the solve and the "
               "fine-tune all train against it, so changing ε trains a different teacher (the dense teacher at "
               f"ε 0.2 is not the one at ε 0.1). {step_link(1, 'Walkthrough, step 1')}.")
