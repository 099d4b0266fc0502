"""Helpers shared by the headless app tests (streamlit AppTest): the app's path, small stage
settings for the "Advanced" widgets, widget look-up, and waiting for a background run."""
import json
import time
from pathlib import Path

APP = str(Path(__file__).resolve().parents[1] / "deadwood_app" / "streamlit_app.py")
# every stage shrunk through the app's own widgets; each test file adds its own seed
FAST_STAGES = dict(teacher_epochs=2, dual_epochs=2, hydra_epochs=1, finetune_epochs=1, eval_samples=60, eval_steps=2)


def widget(at, key):
    for kind in ("number_input", "slider", "select_slider", "selectbox", "multiselect", "radio", "text_input"):
        found = [w for w in getattr(at, kind) if w.key == key]
        if found:
            return found[0]
    raise KeyError(key)


def running(at) -> bool:
    return any(b.key == "stop" for b in at.button)


def run_to_end(at, timeout=600, press=True):
    if press:
        at.button(key="run").click().run()
    deadline = time.time() + timeout
    while running(at):
        assert time.time() < deadline, "the run did not finish"
        time.sleep(0.3)
        at.run()
    assert not at.exception, at.exception
    return at


def figures(at) -> dict:
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
