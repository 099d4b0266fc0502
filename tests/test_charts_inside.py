"""app/charts_inside.py without Streamlit: every figure draws the numbers it is given."""
import numpy as np
import pytest
import torch
from torch import nn

from app import charts_inside as ci
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
    assert list(fig.data[1].x) == ["layer 1", "layer 2"] and list(fig.data[1].y) == [0.05, 0.002]


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


def test_layers_have_one_name_on_every_page():
    """Live pruning's names (charts.layer_labels: "layer 1", "layer 2", ... in model order) label the
    SVCCA axis, the allocation bars and the mask's title, never the module paths ("0", "2", "4")."""
    from app.charts import layer_labels

    names = ["0.weight", "2.weight", "4.weight"]
    assert layer_labels(names) == {"0.weight": "layer 1", "2.weight": "layer 2", "4.weight": "layer 3"}
    study = {"layers": names, "sparsity": 0.9, "similarity": {"magnitude": dict(zip(names, (0.9, 0.8, 0.7)))}}
    assert list(ci.similarity_figure(study).data[0].x) == ["layer 1", "layer 2", "layer 3"]
    bars = ci.allocation_figure({"uniform": dict.fromkeys(names, 0.1)}).data[0]
    assert list(bars.x) == ["layer 1", "layer 2", "layer 3"]
    assert list(bars.customdata) == names  # the module path stays in the hover
    assert not hasattr(ci, "layer_label")  # one naming function, in charts.py
    masks = {"unstructured": np.ones((2, 2)), "bcr": np.ones((2, 2))}
    assert ci.mask_figure(masks, layer_labels(names)["2.weight"]).layout.title.text.startswith("Mask of layer 2:")


def _rows():
    return [{"sparsity": k, "log10_uniform": 9.0 - 10 * k, "log10_guided": 9.5 - 10 * k, "densities": {}}
            for k in (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998)]


def test_region_bound_legend_clears_the_title_and_ticks_read_as_powers_of_ten():
    fig = ci.bound_figure(_rows())
    assert fig.layout.legend.yanchor == "top" and fig.layout.legend.y < 0  # under the plot, not over the title
    axis = fig.layout.xaxis
    assert axis.type == "log" and axis.tickmode == "array"
    assert list(axis.ticktext) == ["1", "0.1", "0.01", "0.001"]  # kept fractions 0.5 .. 0.002
    assert list(axis.tickvals) == pytest.approx([1, 0.1, 0.01, 0.001])
    assert list(axis.range) == [0, -3]  # log10 units, reversed: pruning deepens to the right
    kept = list(fig.data[0].x)
    assert 10 ** axis.range[1] <= min(kept) and max(kept) <= 10 ** axis.range[0]


def test_density_bars_are_linear_and_labelled_so_a_small_one_shows():
    fig = ci.allocation_figure({"uniform": {"a.weight": 0.01, "b.weight": 0.01},
                                "bound-guided": {"a.weight": 0.05, "b.weight": 0.005}})
    assert fig.layout.yaxis.type in (None, "linear")
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= 0.05
    assert list(fig.data[1].text) == ["5.0%", "0.50%"]
    assert fig.data[1].textposition == "outside"  # readable above a bar too short to hold it


def test_similarity_axis_fits_the_lines():
    names = ["a.weight", "b.weight"]
    study = {"layers": names, "sparsity": 0.9, "similarity": {"magnitude": {"a.weight": 0.97, "b.weight": 0.93},
                                                              "dense, another seed": {"a.weight": 0.95,
                                                                                      "b.weight": 0.91}}}
    low, high = ci.similarity_figure(study).layout.yaxis.range
    assert 0.85 <= low < 0.91 and 0.97 < high <= 1.02  # the lines fill the axis (was 0-1.02)


def test_recall_distortion_with_one_sparsity_keeps_the_axis_near_it():
    rows = [{"method": m, "sparsity": 0.9, "epsilon": 0.1, "alpha_clean": 1.1, "alpha_attack": 1.3}
            for m in ("magnitude", "deadwooding")]
    fig = ci.distortion_figure(rows)
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):
        low, high = axis.range
        assert 0.8 <= low < 0.9 < high <= 1.0
    wide = ci.distortion_figure([dict(rows[0], sparsity=k) for k in (0.5, 0.995)]).layout.xaxis.range
    assert wide[0] < 0.5 and 0.995 < wide[1] <= 1.0


def test_the_change_map_shows_edges_merged_by_pruning_and_changed_predictions():
    dense = _three_lines()
    pruned = _three_lines()
    with torch.no_grad():
        pruned[0].weight[2].zero_()  # the third unit's edge (x + y = 1.1) goes, and with it class 1's boundary
    a, b = linear_regions_2d(dense, resolution=60), linear_regions_2d(pruned, resolution=60)
    change = ci.regions_change(a, b)
    assert (change["dense"], change["pruned"]) == (a.count, b.count) and b.count < a.count
    merged, new = (change["shares"][ci.CHANGE[i][0]] for i in (1, 2))
    assert merged > 0 and new == 0  # pruning a unit only removes edges
    assert change["shares"]["prediction changed"] == pytest.approx(np.mean(a.predictions != b.predictions))
    fig = ci.regions_change_figure(a, b, "pruned")
    assert [t.meta for t in fig.data if t.type == "heatmap"] == ["change"]
    assert f"{a.count} regions dense, {b.count} pruned" in fig.layout.title.text
    assert fig.layout.legend.y < 0  # the legend of the four kinds of change lies under the map
