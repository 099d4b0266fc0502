"""deadwood_app/charts_inside.py without Streamlit: every figure draws the numbers it is given."""
import numpy as np
import pytest
import torch
from torch import nn

from deadwood_app import charts_inside as ci
from deadwood import build_model, dataset_info
from deadwood.analysis import granularity_masks, linear_regions_2d, mask_matrices


def _three_lines():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1]]))
        net[0].bias.copy_(torch.tensor([-0.3, -0.4, -1.1]))
        net[2].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 0, 1]]))  # class 1 where y > 0.8
        net[2].bias.zero_()
    return net


def test_regions_figure_one_panel_per_model_with_counts_and_boundary():
    r = linear_regions_2d(_three_lines(), resolution=60)
    assert set(np.unique(r.predictions)) == {0, 1}
    fig = ci.regions_figure([("dense", r), ("pruned", r)], points=([0.5], [0.5], [1]), bounds=[np.log10(7), None])
    assert [a.text for a in fig.layout.annotations] == ["dense: 7 regions · bound 10^0.8", "pruned: 7 regions"]
    heat = [t for t in fig.data if t.meta == "regions"]
    assert len(heat) == 2
    z = np.asarray(heat[0].z)
    assert z.shape == r.labels.shape
    # Seven distinct colours for seven regions, and one colour per region.
    assert len(np.unique(z)) == 7
    assert all(len(np.unique(z[r.labels == k])) == 1 for k in range(7))
    assert len([t for t in fig.data if t.meta == "boundary"]) == 2
    assert len([t for t in fig.data if t.meta == "points"]) == 2


def test_bound_and_allocation_figures_plot_the_rows():
    rows = [{"sparsity": 0.9, "log10_uniform": 9.0, "log10_guided": 9.0, "densities": {}},
            {"sparsity": 0.99, "log10_uniform": 7.0, "log10_guided": 8.5, "densities": {}}]
    fig = ci.bound_figure(rows)
    by = {t.meta: t for t in fig.data}
    assert list(by["uniform"].y) == [9.0, 7.0] and list(by["guided"].y) == [9.0, 8.5]
    fig = ci.allocation_figure({"uniform": {"0.weight": 0.01, "2.weight": 0.01},
                                "bound-guided": {"0.weight": 0.05, "2.weight": 0.002}})
    assert [t.meta for t in fig.data] == ["uniform", "bound-guided"]
    assert list(fig.data[1].x) == ["0", "2"] and list(fig.data[1].y) == [0.05, 0.002]


def test_similarity_figure_solid_methods_dashed_references():
    study = {"layers": ["a.weight", "b.weight"], "sparsity": 0.9,
             "similarity": {"magnitude": {"a.weight": 0.9, "b.weight": 0.8},
                            "dense, another seed": {"a.weight": 0.7, "b.weight": 0.6}}}
    fig = ci.similarity_figure(study)
    by = {t.meta: t for t in fig.data}
    assert list(by["magnitude"].y) == [0.9, 0.8] and by["magnitude"].line.dash == "solid"
    assert by["dense, another seed"].line.dash == "dash"


def test_distortion_and_balance_figures():
    rows = [{"method": "magnitude", "sparsity": s, "epsilon": 0.1, "alpha_clean": a, "alpha_attack": 2 * a}
            for s, a in ((0.9, 1.1), (0.5, 0.9))]
    fig = ci.distortion_figure(rows)
    by = {t.meta: t for t in fig.data}
    assert list(by["magnitude:clean"].x) == [0.5, 0.9] and list(by["magnitude:clean"].y) == [0.9, 1.1]
    assert list(by["magnitude:attack"].y) == [1.8, 2.2]
    result = {"clean": {"epsilon": 0.0, "alpha": 1.5, "dense": {"balance": [0.1, -0.1]},
                        "pruned": {"balance": [0.2, -0.2]}}}
    fig = ci.balance_figure(result, ["a", "b"])
    assert fig.layout.annotations[0].text == "clean · α = 1.50"
    assert {t.meta: list(t.y) for t in fig.data} == {"dense:clean": [0.1, -0.1], "pruned:clean": [0.2, -0.2]}


def test_mask_figure_shows_each_granularity():
    masks = granularity_masks(build_model("mlp", dataset_info("digits"), seed=0), 0.5, (8, 8))
    mats = {k: mask_matrices(v)["2.weight"] for k, v in masks.items()}
    fig = ci.mask_figure(mats, "2.weight")
    assert [t.meta for t in fig.data] == ["unstructured", "bcr"]
    for t in fig.data:
        assert np.array_equal(np.asarray(t.z), mats[t.meta])  # 1 kept, 0 cut
        assert np.asarray(t.z).shape == (256, 64)
    assert fig.layout.annotations[1].text == f"bcr: {1 - mats['bcr'].mean():.1%} cut"
