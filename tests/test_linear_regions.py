"""Linear regions on a 2-D plane and the rank-aware region bound (known answers first)."""
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from deadwood import build_model, dataset_info, load_dataset
from deadwood.analysis.linear_regions import linear_regions_2d, plane_through
from deadwood.pruning.region_bound import (RankSampler, bound_allocation, expected_region_bound, log10,
                                            model_region_bound, region_bound, structural_rank)


def _lines(weights, biases, hidden_out=2):
    """A 2 -> k ReLU -> hidden_out network whose k ReLUs switch on the lines w·x + b = 0."""
    net = nn.Sequential(nn.Linear(2, len(weights)), nn.ReLU(), nn.Linear(len(weights), hidden_out))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(weights, dtype=torch.float32))
        net[0].bias.copy_(torch.tensor(biases, dtype=torch.float32))
    return net


# Three lines in general position, all three crossings inside the unit square:
# x = 0.3, y = 0.4, x + y = 1.1 (crossings (0.3, 0.4), (0.3, 0.8), (0.7, 0.4)).
THREE_LINES = ([[1, 0], [0, 1], [1, 1]], [-0.3, -0.4, -1.1])


def test_three_lines_in_general_position_give_seven_regions():
    regions = linear_regions_2d(_lines(*THREE_LINES), (0, 1), (0, 1), resolution=200)
    assert regions.count == 7
    assert regions.labels.shape == regions.predictions.shape == (200, 200)
    assert sorted(np.unique(regions.labels)) == list(range(7))

    def label(x, y):  # grid index of the point nearest (x, y)
        return regions.labels[int(round(y * 199)), int(round(x * 199))]

    # One point inside each of the seven cells of the arrangement: all distinct.
    points = [(0.1, 0.1), (0.5, 0.1), (0.1, 0.5), (0.4, 0.5), (0.9, 0.9), (0.95, 0.3), (0.25, 0.97)]
    assert len({label(x, y) for x, y in points}) == 7


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_lines_count_equals_the_arrangement_count_when_every_crossing_is_in_view(seed):
    g = torch.Generator().manual_seed(seed)
    n = 6
    angle = torch.rand(n, generator=g) * math.pi
    w, b = torch.stack([torch.cos(angle), torch.sin(angle)], 1), torch.rand(n, generator=g) - 0.5
    crossings = torch.stack([torch.linalg.solve(w[[i, j]].double(), -b[[i, j]].double())
                             for i, j in itertools.combinations(range(n), 2)])
    lo, hi = (crossings.min(0).values - 0.5).tolist(), (crossings.max(0).values + 0.5).tolist()
    count = linear_regions_2d(_lines(w.tolist(), b.tolist()), (lo[0], hi[0]), (lo[1], hi[1]), resolution=500).count
    assert count == 1 + n + math.comb(n, 2) == region_bound(2, [n])


def test_parallel_lines_give_four_regions_and_the_rank_bound_is_exact():
    net = _lines([[1, 0], [1, 0], [1, 0]], [-0.2, -0.5, -0.8])
    assert linear_regions_2d(net, resolution=150).count == 4
    assert region_bound(2, [3], [1]) == 4  # rank 1: Σ_{j<=1} C(3, j)
    assert model_region_bound(net) == 4
    assert region_bound(2, [3]) == 7 == model_region_bound(_lines(*THREE_LINES))


def test_plane_through_three_inputs_and_refusals():
    model = build_model("mlp", dataset_info("digits"), seed=0)
    x = load_dataset("digits", "test").x
    with pytest.raises(ValueError, match="2-D inputs"):
        linear_regions_2d(model, resolution=10)
    plane = plane_through(x[0], x[1], x[2])
    r = linear_regions_2d(model, (0, 1), (0, 1), resolution=40, plane=plane)
    assert r.neurons == 256 + 128 and 1 <= r.count <= 40 * 40
    # The plane's corners are the three inputs: their predictions match the model's.
    with torch.no_grad():
        want = model(x[:3]).argmax(1).tolist()
    assert [r.predictions[0, 0], r.predictions[0, -1], r.predictions[-1, 0]] == want
    with pytest.raises(ValueError, match="nn.ReLU"):
        linear_regions_2d(build_model("resnet20", dataset_info("cifar10")), plane=plane_through(
            torch.zeros(3, 32, 32), torch.ones(3, 32, 32), torch.rand(3, 32, 32)))


# --------------------------------------------------------------------------- bound

def _serra_brute_force(n0, widths):
    """Serra et al.'s Theorem 1, enumerated directly."""
    total = 0
    for js in itertools.product(*[range(n + 1) for n in widths]):
        ok = all(js[l] <= min([n0] + [widths[k] - js[k] for k in range(l)] + [widths[l]])
                 for l in range(len(widths)))
        if ok:
            total += math.prod(math.comb(n, j) for n, j in zip(widths, js))
    return total


@pytest.mark.parametrize("n0,widths", [(1, [3, 3]), (2, [4, 3]), (3, [2, 5, 4]), (2, [6, 6, 6]), (4, [3, 8])])
def test_full_rank_bound_is_serra_et_al(n0, widths):
    assert region_bound(n0, widths) == _serra_brute_force(n0, widths)


def test_one_layer_bound_is_the_hyperplane_arrangement_count():
    # n lines in general position in the plane: 1 + n + C(n, 2) regions (Zaslavsky).
    for n in range(1, 9):
        assert region_bound(2, [n]) == 1 + n + math.comb(n, 2)


def test_bound_is_never_below_the_counted_regions_dense_or_pruned():
    gen = torch.Generator().manual_seed(0)
    for trial in range(6):
        torch.manual_seed(trial)
        net = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
        if trial % 2:  # prune: zero half the weights of each hidden layer at random
            with torch.no_grad():
                for i in (0, 2):
                    w = net[i].weight
                    w.mul_((torch.rand(w.shape, generator=gen) > 0.5).float())
        counted = linear_regions_2d(net, (-4, 4), (-4, 4), resolution=300).count
        assert counted <= model_region_bound(net)


def test_structural_rank_is_the_rank_of_random_values_on_the_pattern():
    rng = np.random.default_rng(1)
    for density in (0.02, 0.05, 0.1, 0.3):
        pattern = rng.random((20, 30)) < density
        rows, cols = np.nonzero(pattern)
        values = np.zeros((20, 30))
        values[rows, cols] = rng.standard_normal(len(rows))
        assert structural_rank(rows, cols, (20, 30)) == np.linalg.matrix_rank(values)


def test_expected_bound_reduces_to_the_dense_bound_and_never_falls_with_density():
    samplers = [RankSampler((6, 4), 8, 0), RankSampler((5, 6), 8, 1)]
    dense = expected_region_bound(samplers, [24, 30])
    assert dense == region_bound(4, [6, 5])
    values = [expected_region_bound(samplers, [round(d * 24), round(d * 30)]) for d in np.linspace(0, 1, 21)]
    assert values[0] == 1  # all-zero matrices: rank 0, one region
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert values[5] < dense  # sparse enough to lose rank
    assert isinstance(dense, Fraction) and log10(dense) == pytest.approx(math.log10(float(dense)))


def test_bound_allocation_is_exact_stays_uniform_where_flat_and_never_lowers_the_bound():
    shapes = {"a": (256, 64), "b": (128, 256), "c": (10, 128)}
    n = sum(r * c for r, c in shapes.values())
    cuts, report = bound_allocation(shapes, 0.5, min_keep=8, samples=4)
    assert sum(cuts.values()) == round(0.5 * n)
    assert all(abs(d - 0.5) < 1e-3 for d in report["densities"].values())  # full rank everywhere: flat
    cuts, report = bound_allocation(shapes, 0.995, min_keep=8, samples=8)
    assert sum(cuts.values()) == round(0.995 * n)
    assert all(shapes[k][0] * shapes[k][1] - v >= 8 for k, v in cuts.items())
    assert report["log10_bound"] > report["log10_bound_uniform"]
    assert report["densities"]["a"] > report["densities"]["b"]  # the narrow first layer is the bottleneck


def test_model_bound_refuses_convolutions():
    with pytest.raises(ValueError, match="fully connected"):
        model_region_bound(build_model("convnet", dataset_info("digits")))
