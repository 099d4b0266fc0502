"""How the app writes numbers and engine messages (no Streamlit here, so it is tested plainly).

- :func:`percent_value` and :func:`percent_text`: one rounding for every percentage the app shows.
  Streamlit's tables truncate a number to the precision of their column's step (0.94999 shows 94.9 %),
  so every table value is rounded here first to that precision, and the table only formats it.
- :func:`plain`: a message from the engine (a path, a glob such as ``DIR/<class>/*``) as Markdown
  that shows it character for character: Streamlit reads every message body as Markdown.
"""
from __future__ import annotations

import re
from typing import Optional

PERCENT_DIGITS = 1  # decimals of a percentage: 95.0 %
PERCENT_STEP = 10.0 ** -(PERCENT_DIGITS + 2)  # the same precision as a fraction (0.001), a table column's step


def percent_value(fraction: Optional[float]) -> Optional[float]:
    """``fraction`` rounded (never truncated) to the precision a percentage is shown with:
    0.94999 -> 0.95, 0.97999 -> 0.98; None stays None."""
    if fraction is None:
        return None
    return round(float(fraction), PERCENT_DIGITS + 2)


def percent_text(fraction: Optional[float], missing: str = "n/a") -> str:
    """``fraction`` as a percentage with :data:`PERCENT_DIGITS` decimals, rounded: 0.94999 -> '95.0%'."""
    if fraction is None:
        return missing
    return f"{float(fraction):.{PERCENT_DIGITS}%}"  # Python's format rounds


def points_text(difference: float) -> str:
    """A difference of two fractions in percentage points, signed and rounded: '+1.5 pts'."""
    return f"{round(difference * 100, PERCENT_DIGITS):+.{PERCENT_DIGITS}f} pts"


# Characters Markdown (and Streamlit's extensions: $ for LaTeX, ~ for strike-through) would read as
# markup; an underscore unless it sits between two letters or digits (as in a file name, where
# Markdown reads it literally: escaping it there would change the text tests and users search for).
_MARKUP = re.compile(r"([\\`*\[\]<>$~|#])|(?<![^\W_])_|_(?![^\W_])")


def plain(message: object) -> str:
    """``message`` escaped so that Markdown shows it as written: ``DIR/<class>/*`` keeps its ``*``
    and ``<class>``, ``$`` starts no formula. Use it for every engine message put on a page."""
    return _MARKUP.sub(lambda m: "\\" + m.group(0), str(message))
