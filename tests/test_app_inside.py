"""Headless tests of the "Inside the network" page (streamlit AppTest): each lens runs what it needs
through the app's background job, then draws figures whose numbers the engine computes independently."""
import base64

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest import APP, FAST_STAGES, figures, run_to_end, widget
from deadwood import RunConfig, run, with_updates
from deadwood.analysis import linear_regions_2d
from deadwood.pipeline import Cache
from deadwood.storage.record import load_run

PAGE = "views/inside.py"
FAST = dict(FAST_STAGES, seed=5)


def open_lens(lens, **widgets):
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page(PAGE).run()
    for key, value in FAST.items():
        widget(at, key).set_value(value)
    widget(at, "lens").set_value(lens)
    at.run()  # the lens's own widgets appear
    for key, value in widgets.items():
        widget(at, key).set_value(value)
    return at.run()


def array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def expected(**changes) -> RunConfig:
    """The configuration the widgets describe, built independently of the page."""
    return with_updates(RunConfig(seed=FAST["seed"]), **{
        "teacher.epochs": 2, "deadwooding.epochs": 2, "hydra.epochs": 1, "finetune.epochs": 1,
        "evaluation.samples": 60, "evaluation.steps": 2, **changes})


def test_page_opens_and_asks_for_a_run():
    at = open_lens("Linear regions")
    assert not at.exception and at.title[0].value == "Inside the network"
    assert any("press **Run**" in i.value for i in at.info)
    assert not figures(at)


def test_linear_regions_lens_draws_the_dense_and_pruned_maps():
    at = run_to_end(open_lens("Linear regions", regions_method="magnitude", regions_sparsity=0.9))
    figs = figures(at)
    assert {"fig_regions", "fig_bound", "fig_allocation"} <= set(figs)
    loaded = load_run(Cache().run_dir(expected(dataset="moons", method="magnitude", sparsity=0.9)))
    counts = [linear_regions_2d(m, resolution=300).count for m in (loaded.dense(), loaded.model)]
    titles = [a["text"] for a in figs["fig_regions"]["layout"]["annotations"]]
    assert titles[0].startswith(f"dense teacher: {counts[0]} regions")
    assert titles[1].startswith(f"magnitude, κ = 0.9: {counts[1]} regions")


def test_representations_lens_compares_each_method_with_the_references():
    at = run_to_end(open_lens("Representations", similarity_methods=["magnitude"], similarity_sparsity=0.8))
    names = [t["meta"] for t in figures(at)["fig_similarity"]["data"]]
    assert names == ["magnitude", "dense, another seed", "magnitude mask, re-initialised and retrained",
                     "random mask, matched per-layer sparsity"]
    assert Cache().has_run(expected(method="magnitude", sparsity=0.8))
    # the layers carry Live pruning's names, not their module indices
    assert figures(at)["fig_similarity"]["data"][0]["x"] == ["layer 1", "layer 2", "layer 3"]
    assert {"layer 1", "layer 2", "layer 3"} <= set(at.dataframe[0].value.columns)


def test_recall_distortion_lens_sweeps_methods_and_sparsities():
    at = run_to_end(open_lens("Recall distortion", distortion_methods=["magnitude", "undecayed"],
                              distortion_grid=[0.5, 0.9]))
    figs = figures(at)
    by = {t["meta"]: t for t in figs["fig_distortion"]["data"] if "meta" in t}
    assert set(by) == {f"{m}:{p}" for m in ("magnitude", "undecayed") for p in ("clean", "attack")}
    assert by["magnitude:clean"]["x"] == [0.5, 0.9]
    assert all(np.isfinite(by["magnitude:clean"]["y"]))
    assert "fig_balances" in figs


def test_block_structure_lens_shows_whole_rows_and_columns():
    at = run_to_end(open_lens("Block structure", blocks_method="magnitude", blocks_sparsity=0.8,
                              block_rows=4, block_cols=4))
    fig = figures(at)["fig_masks"]
    assert [t["meta"] for t in fig["data"]] == ["unstructured", "bcr"]
    bcr = array(fig["data"][1]["z"]).astype(bool)
    saved = load_run(Cache().run_dir(expected(method="magnitude", sparsity=0.8, **{
        "cut.granularity": "bcr", "cut.block_rows": 4, "cut.block_cols": 4}))).model
    first = next(p for p in saved.parameters() if p.dim() > 1)
    assert np.array_equal(bcr, first.detach().numpy() != 0)  # the saved model's own mask
    for i in range(0, bcr.shape[0], 4):
        for j in range(0, bcr.shape[1], 4):
            b = bcr[i:i + 4, j:j + 4]
            whole = (~b.any(1))[:, None] | (~b.any(0))[None, :]
            assert not (~b & ~whole).any()
    assert widget(at, "blocks_layer").options == ["layer 1", "layer 2", "layer 3"]
    assert fig["layout"]["title"]["text"].startswith("Mask of layer 1:")
    rows = at.dataframe[0].value
    assert list(rows["granularity"]) == ["unstructured", "bcr"]
    assert rows["sparsity"].tolist() == pytest.approx([0.8, 0.8], abs=0.01)


def test_a_damaged_checkpoint_in_the_cache_shows_a_message_and_recomputes():
    config = expected(dataset="moons", method="magnitude", sparsity=0.95)
    run(config)
    model = Cache().run_dir(config) / "model.pt"
    model.write_bytes(model.read_bytes()[:100])  # truncated
    at = open_lens("Linear regions", regions_method="magnitude", regions_sparsity=0.95)
    assert not at.exception  # the lens's record reads, its model does not: a message, not a traceback
    assert any("model.pt" in e.value for e in at.error)
    at.button(key="recompute_files").click().run()
    run_to_end(at, press=False)
    assert "fig_regions" in figures(at) and not at.error
    load_run(Cache().run_dir(config))  # replaced by a sound run
