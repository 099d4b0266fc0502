"""What Live pruning says, in each state (streamlit AppTest, nothing trained): the banner before a
run, engine messages shown character for character, and a run at chance warned about rather than
drawn as "+0.0 pts vs teacher"."""
import re

from streamlit.testing.v1 import AppTest

from apptest import APP, figures, widget
from fakerun import many_layer_run
from test_app_own_data import make_folder


def _open(**values):
    at = AppTest.from_file(APP, default_timeout=120).run()
    for key, value in values.items():
        widget(at, key).set_value(value)
        at.run()
    assert not at.exception, at.exception
    return at


def _unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_the_banner_says_seconds_only_for_the_embedded_data_with_run_enabled(fresh_cache, tmp_path):
    at = _open()
    assert [i.value for i in at.info if "embedded digits takes seconds" in i.value]
    at = _open(dataset="folder")  # Run off: no path yet
    assert at.button(key="run").disabled
    assert any("is off until the problem above is fixed" in i.value for i in at.info)
    assert not any("embedded" in i.value for i in at.info)
    # the problem's glob keeps its stars: escaped for Markdown, the same text once read
    assert any("DIR/train/<class>/* and DIR/test/<class>/*" in _unescaped(e.value) and "\\*" in e.value
               for e in at.error)
    folder = make_folder(tmp_path / "images")
    at = _open(dataset="folder", image_folder=str(folder), image_size=16)
    assert not at.button(key="run").disabled
    assert any("trains its teacher first and can take minutes" in i.value for i in at.info)
    assert not any("takes seconds" in i.value for i in at.info)


def test_a_run_at_chance_is_warned_about_not_shown_as_no_change(fresh_cache):
    record = many_layer_run(fresh_cache)
    at = _open()
    warnings = [w.value for w in at.warning]
    assert sum("at chance level (1/10 = 10.0%" in w for w in warnings) == 2, warnings
    clean = next(m for m in at.metric if m.label == "Clean accuracy")
    assert clean.value == "10.0%" and clean.delta == "at chance level"
    assert not any("vs teacher" in (m.delta or "") for m in at.metric)
    # the 52 layer constraints: a band and the top few, not 52 lines
    traces = [t for t in figures(at)["fig_multipliers"]["data"] if t.get("xaxis", "x") == "x"]
    assert any(t.get("meta") == "band:min" for t in traces)
    assert sum(str(t.get("meta")).startswith("rep:") for t in traces) <= 5
    assert record.warnings == [w[0].lower() + w[1:] for w in warnings if "chance" in w]
