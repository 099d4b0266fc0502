"""Recall distortion: balances and the intensification statistic α (known answers), end to end."""
import math

import numpy as np
import pytest
import torch

from deadwood import run
from deadwood.analysis.recall import (distortion_sweep, intensification, per_class_recall, recall_balance,
                                      recall_distortion)
from conftest import tiny


def test_per_class_recall_and_balance_by_hand():
    y = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    pred = [0, 0, 0, 1, 1, 0, 2, 2, 2, 2]  # recalls 0.75, 0.5, 1.0; accuracy 0.8
    recall = per_class_recall(torch.tensor(pred), torch.tensor(y), 4)
    assert recall[:3].tolist() == [0.75, 0.5, 1.0] and math.isnan(recall[3])
    assert recall_balance(recall[:3], 0.8) == pytest.approx([-0.0625, -0.375, 0.25])


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
    from deadwood.pipeline import load_data

    _, test = load_data(loaded.config, torch.device("cpu"))
    data = test.subset(150, 0)
    same = recall_distortion(dense, dense, data, epsilon=0.1, steps=3)
    assert same["clean"]["alpha"] == pytest.approx(1.0) and same["attack"]["alpha"] == pytest.approx(1.0)
    r = recall_distortion(dense, loaded.model, data, epsilon=0.1, steps=3)
    assert r["attack"]["pruned"]["accuracy"] <= r["clean"]["pruned"]["accuracy"]
    for part in ("clean", "attack"):
        p = r[part]["pruned"]
        # The balances average to 0 when weighted by class frequency: Σ n_c B_c = 0.
        counts = np.bincount(data.y.numpy(), minlength=10)
        assert float(np.dot(counts, p["balance"])) == pytest.approx(0.0, abs=1e-9)
        assert np.isfinite(r[part]["alpha"])


def test_distortion_sweep_rows():
    rows = distortion_sweep(tiny(), methods=("magnitude", "undecayed"), sparsities=(0.5, 0.9))
    assert [(r["method"], r["sparsity"]) for r in rows] == [("magnitude", 0.5), ("magnitude", 0.9),
                                                            ("undecayed", 0.5), ("undecayed", 0.9)]
    for r in rows:
        assert np.isfinite(r["alpha_clean"]) and np.isfinite(r["alpha_attack"])
        assert 0 <= r["accuracy_attack"] <= r["accuracy_clean"] <= 1
        assert r["dense_accuracy_clean"] == rows[0]["dense_accuracy_clean"]
