"""Recall distortion: balances and the intensification statistic α (known answers), end to end."""
import math

import numpy as np
import pytest
import torch

from deadwood import run
from deadwood.analysis.recall import (distortion_sweep, intensification, per_class_recall, recall_balance,
                                      recall_distortion, record_distortion)
from deadwood.pipeline import load_data
from conftest import tiny


def test_per_class_recall_and_balance_by_hand():
    y = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    pred = [0, 0, 0, 1, 1, 0, 2, 2, 2, 2]  # recalls 0.75, 0.5, 1.0; accuracy 0.8
    recall = per_class_recall(torch.tensor(pred), torch.tensor(y), 4)
    assert recall[:3].tolist() == [0.75, 0.5, 1.0] and math.isnan(recall[3])
    assert recall_balance(recall[:3], 0.8) == pytest.approx([-0.0625, -0.375, 0.25])
    assert np.isnan(recall_balance([0.5, None], 0.5)[1])  # a class without samples has no balance


def test_alpha_is_one_for_equal_balances_and_zero_for_perfectly_even_recall():
    b_dense = np.array([0.1, -0.3, 0.2, 0.0])
    assert intensification(b_dense, b_dense) == pytest.approx(1.0)
    assert intensification(b_dense, np.zeros(4)) == 0.0  # every recall equals the accuracy
    assert intensification(b_dense, 2 * b_dense) == pytest.approx(2.0)  # imbalance doubled: intensified
    assert intensification(b_dense, 0.5 * b_dense) == pytest.approx(0.5)
    assert math.isnan(intensification(np.zeros(3), np.array([0.1, 0.0, -0.1])))
    # α is the least-squares slope of the pruned balances on the dense ones.
    rng = np.random.default_rng(0)
    bd, bp = rng.standard_normal(10), rng.standard_normal(10)
    slope = np.linalg.lstsq(bd[:, None], bp, rcond=None)[0][0]
    assert intensification(bd, bp) == pytest.approx(slope)


def test_recall_distortion_of_a_model_against_itself_is_one_clean_and_under_attack():
    loaded = run(tiny(method="magnitude"))
    dense = loaded.dense()
    _, test = load_data(loaded.config, torch.device("cpu"))
    data = test.subset(150, 0)
    same = recall_distortion(dense, dense, data, epsilon=0.1, steps=3)
    assert same["clean"]["alpha"] == pytest.approx(1.0) and same["attack"]["alpha"] == pytest.approx(1.0)
    r = recall_distortion(dense, loaded.model, data, epsilon=0.1, steps=3)
    assert r["attack"]["pruned"]["accuracy"] <= r["clean"]["pruned"]["accuracy"]
    counts = np.bincount(data.y.numpy(), minlength=10)
    for part in ("clean", "attack"):
        p = r[part]["pruned"]
        # The balances average to 0 when weighted by class frequency: Σ n_c B_c = 0.
        assert float(np.dot(counts, p["balance"])) == pytest.approx(0.0, abs=1e-9)
        # Recall recomputed from plain predictions (clean) agrees with the evaluation's.
        if part == "clean":
            with torch.no_grad():
                pred = loaded.model(data.x).argmax(1)
            assert p["recall"] == pytest.approx(per_class_recall(pred, data.y, 10).tolist())
        assert np.isfinite(r[part]["alpha"])


def test_record_distortion_equals_a_fresh_evaluation_of_the_saved_models():
    config = tiny(method="magnitude", sparsity=0.9)
    record = run(config).record
    loaded = run(config)
    _, test = load_data(config, torch.device("cpu"))
    fresh = recall_distortion(loaded.dense(), loaded.model, test.subset(config.evaluation.samples, config.seed),
                              epsilon=config.epsilon, steps=config.evaluation.steps, seed=config.seed)
    stored = record_distortion(record)
    for part in ("clean", "attack"):
        assert stored[part]["alpha"] == pytest.approx(fresh[part]["alpha"])
        assert stored[part]["pruned"]["recall"] == pytest.approx(fresh[part]["pruned"]["recall"])
    with pytest.raises(ValueError, match="no epsilon 0.3"):
        record_distortion(record, 0.3)


def test_distortion_sweep_rows():
    rows = distortion_sweep(tiny(), methods=("magnitude", "undecayed"), sparsities=(0.5, 0.9))
    assert [(r["method"], r["sparsity"]) for r in rows] == [("magnitude", 0.5), ("magnitude", 0.9),
                                                            ("undecayed", 0.5), ("undecayed", 0.9)]
    for r in rows:
        assert np.isfinite(r["alpha_clean"]) and np.isfinite(r["alpha_attack"])
        assert 0 <= r["accuracy_attack"] <= r["accuracy_clean"] <= 1
        assert r["dense_accuracy_clean"] == rows[0]["dense_accuracy_clean"]
