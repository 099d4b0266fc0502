"""Links that carry the view: what the address may hold, and a message for what it may not.

The sidebar's settings and each page's own controls are widgets bound to the address under their
keys (``bind="query-params"``: Streamlit reads them on load and writes them back on change), so
``/?dataset=digits&model=mlp&method=deadwooding&sparsity=0.99&epsilon=0.2`` opens that view. A
value a widget cannot take is dropped by Streamlit without a word; :func:`check` says so first,
in one line per value, so a mistyped link shows the defaults and why. The job tokens the pages
add (``?live=<token>``, :mod:`app.runs`) are not settings and are never checked here.
"""
from __future__ import annotations

from typing import Callable, Mapping
from urllib.parse import urlencode

import streamlit as st

import deadwood

from . import widgets

Rule = Callable[[str], "str | None"]  # the address's text -> why it cannot be used, or None


def one_of(options, what: str) -> Rule:
    """Accept exactly the strings of ``options`` (what the widget shows, and so what the address holds)."""
    allowed = [str(o) for o in options]

    def rule(text: str) -> str | None:
        return None if text in allowed else f"{what} must be one of {', '.join(allowed)}"
    return rule


def number_in(lo: float, hi: float, what: str) -> Rule:
    def rule(text: str) -> str | None:
        try:
            value = float(text)
        except ValueError:
            return f"{what} must be a number from {lo:g} to {hi:g}"
        return None if lo <= value <= hi else f"{what} must be from {lo:g} to {hi:g}"
    return rule


def whole_in(lo: int, hi: int, what: str) -> Rule:
    """Accept a whole number from ``lo`` to ``hi`` (a slider over steps, such as the solve's epochs)."""
    def rule(text: str) -> str | None:
        return None if text.strip().isdigit() and lo <= int(text) <= hi else f"{what} must be a whole number " \
            f"from {lo} to {hi}"
    return rule


def sidebar_rules() -> dict[str, Rule]:
    """The rules of the settings every page's sidebar shares."""
    return {
        "dataset": one_of(deadwood.dataset_names(), "the dataset"),
        "model": one_of([*deadwood.model_names(), widgets.TORCHVISION_ENTRY], "the model"),
        "method": one_of(deadwood.method_names(), "the method"),
        "sparsity": one_of(map(widgets.kappa_label, widgets.SPARSITY_CHOICES), "κ (sparsity)"),
        "epsilon": number_in(*widgets.EPSILON_RANGE, "the run budget ε (epsilon)"),
    }


def problems(params: Mapping[str, str], rules: Mapping[str, Rule]) -> list[str]:
    """One line per value of ``params`` that its rule refuses, naming the key, the value and the rule."""
    out = []
    for key, rule in rules.items():
        text = params.get(key)
        if text is not None and (why := rule(text)) is not None:
            out.append(f"The link's {key}={text!r} cannot be used: {why}. Showing the default instead.")
    return out


def check(rules: Mapping[str, Rule] | None = None) -> None:
    """Before the widgets are drawn: a warning for each value in the address they would drop."""
    for line in problems(st.query_params, sidebar_rules() if rules is None else rules):
        st.warning(line, icon=":material/link_off:")


def href(page: str, **params) -> str:
    """A link to ``page`` (``"walkthrough"``, or ``""`` for Live pruning) carrying this view's
    settings from the address, with ``params`` on top; the job tokens stay behind."""
    keep = {k: st.query_params.get(k) for k in sidebar_rules() if k in st.query_params}
    query = urlencode({**keep, **{k: str(v) for k, v in params.items()}})
    return f"/{page}" + (f"?{query}" if query else "")
