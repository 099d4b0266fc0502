"""The look every chart shares (no Streamlit): colours, titles, and where the legend goes.

- :func:`layout`: the one layout helper every figure goes through: the title at the top left, its
  details (a parenthesis) on a second, smaller line so that a half-width chart does not cut it, and
  the legend outside the plot, under it when it is short, in a scrolling column beside it when long
  (:func:`legend_below`, :func:`legend_beside`): never over the title or the curves.
- Colours: :data:`PALETTE` for a few categories; :func:`distinct_colors` for any number (no colour
  repeats within a chart); :func:`layer_colors` for layers in model order (a continuous scale from
  input to output once there are many); :data:`CONSTRAINT_COLORS` for the distillation and robustness
  constraints, which no layer colour takes.
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

TEACHER_COLOR = "#222222"
FONT_SIZE = 15  # readable when projected
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
CONSTRAINT_COLORS = {"kd": "#d62728", "rob": "#ff7f0e"}  # red and orange: no layer colour is either
_FEW = tuple(c for c in PALETTE if c not in CONSTRAINT_COLORS.values())  # eight, for up to eight layers
LAYER_SCALE = "Viridis"  # purple (input) to green-yellow (output): no red, no orange
_SCALE_END = 0.9  # Viridis' last tenth is too pale on white
MANY_LAYERS = 12  # from here per-layer charts draw a band, a colour scale or one row per layer
LEGEND_BESIDE_FROM = 7  # legend entries from which the legend is a scrolling column beside the plot


def distinct_colors(n: int, scale: str = "Turbo") -> list[str]:
    """``n`` colours, none repeated: the palette while it lasts, else ``n`` samples of ``scale``."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    return sample_colorscale(scale, [0.05 + 0.9 * i / (n - 1) for i in range(n)])


def layer_colors(n: int) -> list[str]:
    """Colours for ``n`` layers in model order, never a constraint's and never repeated: categorical
    for a few layers, :data:`LAYER_SCALE` by depth for more."""
    if n <= len(_FEW):
        return list(_FEW[:n])
    return sample_colorscale(LAYER_SCALE, [_SCALE_END * i / (n - 1) for i in range(n)])


def _title(text: str) -> str:
    """The title's parenthesis on a second, smaller line: a half-width chart keeps all of it."""
    head, sep, rest = text.partition(" (")
    if not sep or "<br>" in text:
        return text
    return f"{head}<br><span style='font-size:{FONT_SIZE - 2}px'>({rest}</span>"


def legend_entries(fig: go.Figure) -> int:
    """How many entries the figure's legend shows."""
    groups = set()
    for t in fig.data:
        if t.showlegend is False or not t.name:
            continue
        groups.add((t.legendgroup or id(t), t.name))
    return len(groups)


def legend_below(fig: go.Figure, y: float | None = None) -> go.Figure:
    """The legend in rows under the plot and its x-axis title, left-aligned; Plotly widens the
    bottom margin to hold every row. ``y`` (paper units) overrides the computed place."""
    height = fig.layout.height or 450
    plot = max(height - 100 - 90, 120)  # roughly: the figure less the top and bottom margins
    fig.update_layout(legend=dict(orientation="h", yanchor="top", xanchor="left", x=0.0,
                                  y=-70 / plot if y is None else y),
                      margin=dict(b=90))
    return fig


def legend_beside(fig: go.Figure) -> go.Figure:
    """The legend as a column right of the plot (Plotly widens the right margin for it, and scrolls
    a column taller than the plot)."""
    fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top"))
    return fig


def place_legend(fig: go.Figure) -> go.Figure:
    """Below for a short legend, beside for a long one (:data:`LEGEND_BESIDE_FROM`)."""
    if legend_entries(fig) >= LEGEND_BESIDE_FROM:
        return legend_beside(fig)
    return legend_below(fig)


def layout(fig: go.Figure, title: str, height: int = 420, legend: str = "auto") -> go.Figure:
    """The common look: title (and its details) at the top left, projector-sized font, margins, and
    the legend ``"below"``, ``"beside"``, ``"auto"`` (:func:`place_legend`) or ``"none"``."""
    fig.update_layout(title=dict(text=_title(title), x=0.0, xanchor="left", y=1 - 24 / height, yanchor="top",
                                 yref="container"),  # 24 px down: a title at the very top was cut off
                      height=height, font=dict(size=FONT_SIZE), margin=dict(l=60, r=20, t=90, b=60))
    if legend == "none":
        fig.update_layout(showlegend=False)
    elif legend == "below":
        legend_below(fig)
    elif legend == "beside":
        legend_beside(fig)
    else:
        place_legend(fig)
    return fig
