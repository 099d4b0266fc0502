"""The companion notebooks: each executes top to bottom in a fresh kernel, and each stored copy
is executed, small, and readable without a Jupyter front-end.

Execution runs in quick mode (``DEADWOOD_NOTEBOOK_QUICK=1``: every run shrunk, same code paths)
without the static PNG copies (``DEADWOOD_NOTEBOOK_PNG=0``); one test renders a PNG for real.
"""
import base64
import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# notebooks/execute.py is a script beside the notebooks, not part of the package: load it by path.
_spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOKS / "execute.py")
_execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_execute)
execute, notebooks = _execute.execute, _execute.notebooks

PLOTLY = "application/vnd.plotly.v1+json"
NAMES = [p.name for p in notebooks()]
EXPECTED = ["01_dense_teacher.ipynb", "02_lagrangian_dual.ipynb", "03_global_cut.ipynb",
            "04_finetune_distill_adversarial.ipynb", "05_robustness_with_foolbox.ipynb",
            "06_compare_methods.ipynb", "07_inside_the_network.ipynb",
            "08_what_sparsity_buys.ipynb", "09_your_own_network.ipynb", "10_fair_fight.ipynb"]


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


def test_the_ten_notebooks_are_there_in_reading_order():
    assert NAMES == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom_in_a_fresh_kernel(name, cache_dir):
    # A failing cell raises CellExecutionError (with the cell's traceback) and fails the test.
    nb, _ = execute(NOTEBOOKS / name, env={"DEADWOOD_NOTEBOOK_QUICK": "1", "DEADWOOD_NOTEBOOK_PNG": "0",
                                           "DEADWOOD_CACHE": str(cache_dir)})
    outputs = list(_outputs(nb))
    assert not [o for o in outputs if o.output_type == "error"]
    assert "configuration: QUICK" in "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert any(PLOTLY in o.get("data", {}) for o in outputs), "no figure was drawn"


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_is_executed_small_and_readable_on_a_code_host(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size < 2_000_000, f"{name} is {path.stat().st_size / 1e6:.2f} MB"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "stored with unexecuted cells"
    outputs = list(_outputs(nb))
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "configuration: embedded default" in streams, "stored outputs must come from the embedded default"
    assert "Traceback" not in streams
    figures = [o.data for o in outputs if PLOTLY in o.get("data", {})]
    assert figures, "no figure stored"
    for data in figures:  # a viewer without Plotly's mimetype (a code host) falls back to the PNG
        assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
        assert "text/html" not in data
    # Opens by saying what the step is, ends with what to take away; builds on the engine.
    assert nb.cells[0].cell_type == "markdown" and nb.cells[-1].cell_type == "markdown"
    assert "import deadwood" in "".join(c.source for c in code)
    assert "$" in "".join(c.source for c in nb.cells if c.cell_type == "markdown"), "no formula"


def test_show_stores_the_interactive_figure_and_a_png(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import companion as nb\nimport plotly.graph_objects as go\n"
        "nb.show(go.Figure(go.Scatter(y=[1, 3, 2]), layout_title_text='probe'), height=300)")])
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    ran, _ = execute(path, env={"DEADWOOD_NOTEBOOK_PNG": "1"})
    outputs = list(_outputs(ran))
    said = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if "no static PNG copies" in said:
        pytest.skip(f"kaleido cannot render here: {said.strip()}")
    (data,) = [o.data for o in outputs if o.output_type == "display_data"]
    assert data[PLOTLY]["layout"]["title"]["text"] == "probe"
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (820, 300)
