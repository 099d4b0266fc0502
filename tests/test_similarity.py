"""SVCCA: known answers, invariances, and the per-layer comparison with its contrasts."""
import numpy as np
import pytest
import torch

from deadwood import Mask, build_model, dataset_info, load_dataset
from deadwood.analysis.similarity import (canonical_correlations, layer_similarity, matched_random_mask,
                                          similarity_study, svcca_similarity)
from conftest import tiny


def _well_conditioned(p, rng, spread=2.0):
    """An invertible p x p matrix with singular values in [1/spread, spread]."""
    q1, _ = np.linalg.qr(rng.standard_normal((p, p)))
    q2, _ = np.linalg.qr(rng.standard_normal((p, p)))
    return q1 @ np.diag(rng.uniform(1 / spread, spread, p)) @ q2


def test_svcca_is_one_for_an_invertible_linear_map_of_the_same_activations():
    rng = np.random.default_rng(0)
    # Rank-5 activations of 12 neurons: the 99 % cut keeps the same 5-dimensional space on both sides.
    a = rng.standard_normal((800, 5)) @ rng.standard_normal((5, 12))
    assert svcca_similarity(a, a @ _well_conditioned(12, rng)) == pytest.approx(1.0, abs=1e-8)
    # Full CCA (keep everything) is invariant to any invertible map, however badly conditioned.
    b = rng.standard_normal((800, 10))
    q = rng.standard_normal((10, 10))
    assert np.linalg.cond(q) > 10
    assert svcca_similarity(b, b @ q, keep_variance=1.0) == pytest.approx(1.0, abs=1e-8)
    assert svcca_similarity(b @ q, b, keep_variance=1.0) == pytest.approx(1.0, abs=1e-8)


def test_svcca_is_low_for_independent_noise_and_matches_pearson_in_one_dimension():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4000, 10)), rng.standard_normal((4000, 10))
    assert svcca_similarity(a, b) < 0.1
    x = rng.standard_normal(500)
    y = 0.6 * x + 0.8 * rng.standard_normal(500)
    assert svcca_similarity(x[:, None], y[:, None]) == pytest.approx(abs(np.corrcoef(x, y)[0, 1]), abs=1e-10)
    # Shared signal in 3 of 8 directions, noise elsewhere: three correlations near 1, the rest small.
    z = rng.standard_normal((4000, 3))
    rho = canonical_correlations(np.hstack([z, rng.standard_normal((4000, 5))]),
                                 np.hstack([z @ _well_conditioned(3, rng), rng.standard_normal((4000, 5))]), 1.0)
    assert np.all(rho[:3] > 0.999) and np.all(rho[3:] < 0.1)


def test_svcca_input_errors():
    with pytest.raises(ValueError, match="same samples"):
        svcca_similarity(np.zeros((10, 3)), np.zeros((9, 3)))
    with pytest.raises(ValueError, match="keep_variance"):
        svcca_similarity(np.ones((10, 3)), np.ones((10, 3)), keep_variance=0)
    assert np.isnan(svcca_similarity(np.ones((10, 3)), np.random.rand(10, 3)))  # constant: undefined


def test_layer_similarity_of_a_model_with_itself_is_one_and_with_another_init_is_lower():
    info = dataset_info("digits")
    x = load_dataset("digits", "test").x[:300]
    a, b = build_model("convnet", info, seed=0), build_model("convnet", info, seed=1)
    same = layer_similarity(a, a, x)
    assert set(same) == {n for n, p in a.named_parameters() if p.dim() > 1}
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in same.values())
    other = layer_similarity(a, b, x)
    assert all(other[n] < 0.99 for n in other)


def test_matched_random_mask_keeps_each_layers_count():
    model = build_model("mlp", dataset_info("digits"), seed=0)
    mask = Mask({n: torch.rand(p.shape) > 0.7 for n, p in model.named_parameters() if p.dim() > 1})
    rand = matched_random_mask(mask, torch.Generator().manual_seed(0))
    for n in mask:
        assert int(rand[n].sum()) == int(mask[n].sum())
        assert not torch.equal(rand[n], mask[n])


def test_similarity_study_runs_every_method_and_contrast():
    study = similarity_study(tiny(sparsity=0.8), methods=("magnitude", "random"), samples=200)
    names = {"magnitude", "random", "dense, another seed", "magnitude mask, re-initialised and retrained",
             "random mask, matched per-layer sparsity"}
    assert set(study["similarity"]) == names
    assert set(study["accuracy"]) == names | {"teacher"}
    for sims in study["similarity"].values():
        assert list(sims) == study["layers"]
        assert all(0 <= v <= 1 for v in sims.values())
    # Pruned at 80 % and fine-tuned from the teacher, magnitude pruning stays closer to it
    # at the first layer than a model trained from another initialisation.
    first = study["layers"][0]
    assert study["similarity"]["magnitude"][first] > study["similarity"]["dense, another seed"][first]
