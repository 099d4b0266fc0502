"""What every companion notebook shares: setup and display only, never engine logic.

- ``import deadwood`` works because the project is installed (``pip install -e .``).
- One torch thread: the models here are tiny, so a second thread buys nothing and,
  on a shared 2-core machine, turns every small matrix product into a fight for
  the cores (a run took over ten times longer with two threads under load).
- ``DEADWOOD_NOTEBOOK_QUICK=1`` shrinks every run so the test suite can execute all
  notebooks quickly; the stored outputs come from the embedded default (unset).
- :func:`show` displays a Plotly figure interactively *and* stores a PNG of it in
  the same output, so a reader who opens the stored notebook on a code host (which
  runs no JavaScript) still sees every figure. ``DEADWOOD_NOTEBOOK_PNG=0`` skips the
  PNGs (they need kaleido and a Chromium).
"""
from __future__ import annotations

import base64
import json
import os
import threading
import warnings

import plotly.graph_objects as go
import plotly.io as pio
import torch
from IPython.display import Markdown, display

import deadwood

torch.set_num_threads(1)
# A figure that is displayed without show() must not inline plotly.js (3.5 MB per figure).
pio.renderers.default = "plotly_mimetype"
pio.templates.default = "plotly_white"

QUICK = os.environ.get("DEADWOOD_NOTEBOOK_QUICK", "0") not in ("", "0")
PNG = os.environ.get("DEADWOOD_NOTEBOOK_PNG", "1") not in ("", "0")

START_TIMEOUT = 180  # seconds for Chromium to come up (it competes with training for the cores)
RENDER_TIMEOUT = 120  # seconds for one PNG

# Quick mode: every stage a few epochs, a short PGD on a subset. Numbers change, code paths do not.
_QUICK_UPDATES = {"teacher.epochs": 4, "deadwooding.epochs": 3, "hydra.epochs": 2, "finetune.epochs": 3,
                  "evaluation.steps": 3, "evaluation.samples": 120}


def config(**updates) -> deadwood.RunConfig:
    """The embedded default ``RunConfig()`` with ``updates`` (dotted names allowed), shrunk in quick mode."""
    cfg = deadwood.RunConfig()
    if QUICK:
        cfg = deadwood.with_updates(cfg, **_QUICK_UPDATES)
    return deadwood.with_updates(cfg, **updates)


def overrides(**updates) -> dict:
    """``updates`` (dotted names) as ``overrides`` for :func:`deadwood.prune`; in quick mode the quick
    settings replace them where both name a field."""
    return {**updates, **(_QUICK_UPDATES if QUICK else {})}


def banner() -> None:
    """Say which configuration this notebook runs (the stored outputs must say 'embedded default')."""
    mode = "QUICK (DEADWOOD_NOTEBOOK_QUICK=1: shrunk for the tests)" if QUICK else "embedded default"
    print(f"configuration: {mode}; deadwood {deadwood.__version__}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread; cache {deadwood.Cache().root}")


# --------------------------------------------------------------------------- figures

class _StaticImages:
    """PNG rendering through kaleido, one Chromium for the whole notebook, started in the background.

    Starting Chromium takes seconds, so it happens on a thread while the notebook
    trains. A one-shot render comes first because it fails cleanly when kaleido or a
    Chromium is missing; only then is kaleido's persistent server started (a server
    started without a browser waits forever on its first request).
    """

    def __init__(self):
        self.error = None if PNG else "DEADWOOD_NOTEBOOK_PNG=0"
        self.told = False
        self.ready = threading.Event()
        if PNG:
            threading.Thread(target=self._start, daemon=True).start()
        else:
            self.ready.set()

    def _start(self):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = go.Figure()
                probe.to_image(format="png", width=20, height=20)  # one-shot
                import kaleido

                kaleido.start_sync_server(silence_warnings=True)
                probe.to_image(format="png", width=20, height=20)  # the server's browser is up
        except Exception as e:  # no kaleido, no Chromium: figures stay interactive only
            self.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
        finally:
            self.ready.set()

    def png(self, fig, width: int, height: int) -> bytes | None:
        if self.error is None and not self.ready.wait(timeout=START_TIMEOUT):
            self.error = f"kaleido did not start within {START_TIMEOUT} s"
        if self.error is None:
            try:
                return _with_timeout(lambda: fig.to_image(format="png", width=width, height=height, scale=1),
                                     RENDER_TIMEOUT)
            except Exception as e:  # a wedged Chromium must not hang the notebook: go on without PNGs
                self.error = f"{type(e).__name__}: {str(e).strip()[:160]}"
        if not self.told:
            print(f"(no static PNG copies from here on: {self.error})")
            self.told = True
        return None


def _with_timeout(fn, seconds: float):
    """``fn()`` on a daemon thread; TimeoutError when it has not returned after ``seconds``."""
    box: dict = {}

    def work():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # kaleido's notes about options a server ignores
                box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"kaleido did not answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


_STATIC = _StaticImages()


def show(fig, width: int = 820, height: int | None = None) -> None:
    """Display ``fig`` as one output holding the interactive Plotly figure and a PNG of it.

    Jupyter (JupyterLab, Notebook 7, VS Code) draws the interactive one; a viewer
    that does not know Plotly's mimetype falls back to the PNG.
    """
    height = height or fig.layout.height or 420
    fig.update_layout(width=None, height=height, margin=fig.layout.margin or dict(l=60, r=20, t=60, b=50))
    bundle = {"application/vnd.plotly.v1+json": json.loads(pio.to_json(fig, validate=False)),
              "text/plain": f"<Plotly figure: {fig.layout.title.text or 'untitled'}>"}
    png = _STATIC.png(fig, width, height)
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode()
    display(bundle, raw=True)


def table(rows: list[list], headers: list[str]) -> None:
    """A Markdown table (rendered by Jupyter and by code hosts alike)."""
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    display(Markdown("\n".join(lines)))
