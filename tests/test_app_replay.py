"""Headless tests of the solve, replayed (Walkthrough step 3): Step and Back change the frame, Play
advances one epoch per run and stops at the last, and a solve stored before snapshots still serves
its runs while the replay says what it needs (streamlit AppTest, the test session's cache)."""
import json

import numpy as np
import pytest

from apptest import figures, run_to_end, running, widget
from deadwood import run, with_updates
from deadwood.pipeline import Cache
from deadwood.storage.solves import SNAPSHOT_FILE, SUMMARY_FILE
from test_app_walkthrough import WALK, _array, expected_config, open_app

pytestmark = pytest.mark.filterwarnings("ignore::deadwood.robustness.checks.RobustnessWarning")

EPOCHS = 4


def _open(seed: int, epochs: int = EPOCHS):
    return open_app(WALK, query={"step": "3"}, seed=seed, dual_epochs=epochs)


def _frame(at) -> dict:
    """What the replay draws now: the epoch in each figure's title, the histogram and mask data."""
    figs = figures(at)
    hist, masks = figs["fig_walk-replay-magnitudes"], figs["fig_walk-replay-masks"]
    return {"titles": [figs[k]["layout"]["title"]["text"] for k in
                       ("fig_walk-replay", "fig_walk-replay-magnitudes", "fig_walk-replay-masks")],
            "hist": [list(t["y"]) for t in hist["data"] if t["type"] == "scatter"],
            "masks": [_array(t["z"]) for t in masks["data"] if t["type"] == "heatmap"]}


@pytest.fixture(scope="module")
def solved():
    """A four-epoch solve of the fast settings, stored in the session's cache."""
    config = expected_config(seed=61, **{"deadwooding.epochs": EPOCHS})
    run(config)
    assert Cache().solves.snapshots(config) is not None
    return config


def test_step_and_back_change_the_frame(solved):
    at = _open(61)
    assert not at.exception, at.exception
    last = _frame(at)
    assert widget(at, "epoch").value == EPOCHS and f"epoch {EPOCHS} of {EPOCHS}" in last["titles"][0]
    assert at.button(key="replay_step").disabled and not at.button(key="replay_back").disabled
    at.button(key="replay_back").click().run()
    before = _frame(at)
    assert widget(at, "epoch").value == EPOCHS - 1
    assert all(f"epoch {EPOCHS - 1}" in t for t in before["titles"]), before["titles"]
    assert before["hist"] != last["hist"]  # the weights moved between the two epochs
    assert any(not np.array_equal(a, b) for a, b in zip(before["masks"], last["masks"]))
    at.button(key="replay_step").click().run()
    assert widget(at, "epoch").value == EPOCHS and _frame(at)["hist"] == last["hist"]


def test_the_masks_are_the_cut_of_each_epochs_weights(solved):
    at = _open(61)
    widget(at, "epoch").set_value(1).run()
    snaps = Cache().solves.snapshots(solved)
    kept = sum(_array(z).sum() for z in _frame(at)["masks"])
    total = sum(w.numel() for w in snaps[0].values())
    assert kept == pytest.approx((1 - solved.sparsity) * total, abs=len(snaps[0]) * 8 + 1)
    # the threshold drawn is the one a global cut of epoch 1's weights uses
    flat = np.concatenate([w.float().abs().numpy().ravel() for w in snaps[0].values()])
    theta = np.sort(flat)[round(solved.sparsity * total) - 1]
    assert f"= {theta:.2g})" in _frame(at)["titles"][1]


def test_play_advances_one_epoch_per_run_and_stops_at_the_last(solved):
    at = _open(61)
    widget(at, "epoch").set_value(1).run()
    at.button(key="replay_play").click().run()
    seen = [widget(at, "epoch").value]
    assert any(b.key == "replay_pause" for b in at.button)  # playing
    for _ in range(EPOCHS + 2):
        if not any(b.key == "replay_pause" for b in at.button):
            break
        at.run()  # what the fragment's timer does, one frame at a time
        seen.append(widget(at, "epoch").value)
    assert seen == list(range(1, EPOCHS + 1))
    assert not any(b.key == "replay_pause" for b in at.button) and any(b.key == "replay_play" for b in at.button)
    assert f"epoch {EPOCHS} of {EPOCHS}" in _frame(at)["titles"][0]
    at.run()
    assert widget(at, "epoch").value == EPOCHS  # stopped: no further frame
    # Play at the last epoch starts again from the first
    at.button(key="replay_play").click().run()
    assert widget(at, "epoch").value == 1


def test_pause_stops_where_it_is(solved):
    at = _open(61)
    widget(at, "epoch").set_value(1).run()
    at.button(key="replay_play").click().run()
    at.run()
    at.button(key="replay_pause").click().run()
    here = widget(at, "epoch").value
    at.run()
    assert widget(at, "epoch").value == here == 2 and any(b.key == "replay_play" for b in at.button)


def test_an_old_solve_serves_its_runs_and_the_replay_says_what_it_needs():
    config = expected_config(seed=62)
    run(config)
    store = Cache().solves
    folder = store.folder(config)
    (folder / SNAPSHOT_FILE).unlink()  # as an entry stored before solves kept their weights per epoch
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    del summary["snapshots"]
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    other = run(with_updates(config, sparsity=0.8))  # another κ: not the run already cached
    assert other.record.prune_info["solve_cached"]  # every run is still served from it
    at = open_app(WALK, query={"step": "3"}, seed=62)
    assert not at.exception, at.exception
    figs = figures(at)
    assert {"fig_walk-replay", "fig_walk-quantiles"} <= set(figs) and "fig_walk-replay-masks" not in figs
    assert any("needs a fresh solve" in i.value for i in at.info)
    at.button(key="replay_resolve").click().run()
    assert running(at)
    run_to_end(at, press=False)
    at.run()
    assert store.snapshots(config) is not None
    assert "fig_walk-replay-masks" in figures(at) and not any("needs a fresh solve" in i.value for i in at.info)


def test_a_link_opens_its_epoch_and_a_bad_epoch_says_so(solved):
    at = open_app(WALK, query={"step": "3", "epoch": "2"}, seed=61, dual_epochs=EPOCHS)
    assert not at.exception and widget(at, "epoch").value == 2 and not at.warning
    assert "after solve epoch 2" in _frame(at)["titles"][2]
    bad = open_app(WALK, query={"step": "3", "epoch": "99"}, seed=61, dual_epochs=EPOCHS)
    assert not bad.exception and widget(bad, "epoch").value == EPOCHS
    assert any("epoch='99'" in w.value and "default" in w.value for w in bad.warning)


def test_kappa_on_a_stored_solve_redraws_the_four_numbers_and_the_cut_beside_them(solved):
    """Live pruning, κ without a run of its own: the four one-shot numbers, the profile, per-layer
    sparsity, the dead wood and the masks all follow κ, under "Before fine-tuning"; the multipliers do not."""
    from deadwood.pruning.sparsity_profile import at as profile_at

    at = open_app(seed=61, dual_epochs=EPOCHS)
    profile = Cache().solves.summary(solved)["profile"]
    shown = {}
    for k in (0.8, 0.9):
        widget(at, "sparsity").set_value(k).run()
        assert not at.exception and not running(at)
        p = profile_at(profile, k)
        assert any(h.value.startswith("Before fine-tuning") and f"κ = {p['sparsity']:g}" in h.value
                   for h in at.subheader)
        values = [m.value for m in at.metric][:4]
        assert values == [f"{p['student']['clean']:.1%}", f"{p['student']['robust']:.1%}",
                          f"{p['teacher']['clean']:.1%}", f"{p['teacher']['robust']:.1%}"]
        figs = figures(at)
        titles = {key: figs[key]["layout"]["title"]["text"] for key in
                  ("fig_cut-layer-sparsity", "fig_cut-dead-wood", "fig_cut-masks")}
        assert f"κ = {k:g}" in titles["fig_cut-masks"] and f"κ = {k:.1%}" in titles["fig_cut-dead-wood"]
        assert any("Before fine-tuning" in c.value for c in at.caption)
        shown[k] = ([m for m in figs["fig_cut-masks"]["data"]], figs["fig_sparsity-profile"]["layout"],
                    figs["fig_solve-multipliers"]["data"])
    assert shown[0.8][0] != shown[0.9][0] and shown[0.8][1] != shown[0.9][1]  # the masks and the κ marker
    assert shown[0.8][2] == shown[0.9][2]  # the multipliers do not depend on κ


def test_a_model_above_the_limit_replays_from_the_quantiles_and_says_why(monkeypatch):
    from deadwood.methods.deadwooding import method

    monkeypatch.setattr(method, "SNAPSHOT_LIMIT", 10)
    config = expected_config(seed=63)
    run(config)
    assert Cache().solves.snapshots(config) is None
    at = open_app(WALK, query={"step": "3"}, seed=63)
    assert not at.exception, at.exception
    figs = figures(at)
    assert {"fig_walk-replay", "fig_walk-quantiles"} <= set(figs) and "fig_walk-replay-masks" not in figs
    assert any("more than the 10 whose every epoch" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "replay_resolve"]  # a fresh solve would keep none either
    widget(at, "epoch").set_value(1).run()
    assert "after solve epoch 1" in figures(at)["fig_walk-quantiles"]["layout"]["title"]["text"]
