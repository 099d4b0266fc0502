import pytest
import torch
from torch.nn.utils import prune

from deadwood import ConfigError, Mask, build_model, dataset_info
from deadwood.pruning.masks import global_cut, global_threshold, layerwise_cut, magnitudes, prunable, random_cut


def _model(seed=0, name="mlp", dataset="digits"):
    return build_model(name, dataset_info(dataset), seed=seed)


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("name,dataset", [("mlp", "digits"), ("convnet", "digits")])
def test_global_cut_equals_torch_global_unstructured(sparsity, name, dataset):
    ours = _model(1, name, dataset)
    mask, report = global_cut(magnitudes(ours), sparsity)  # no collapse guard: the plain cut

    theirs = _model(1, name, dataset)
    modules = dict(theirs.named_modules())
    params = [(modules[n.rpartition(".")[0]], "weight") for n in prunable(theirs)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    for n in mask:
        torch_mask = modules[n.rpartition(".")[0]].weight_mask.bool()
        assert torch.equal(mask[n], torch_mask), n


def test_global_cut_is_exact_and_threshold_is_global():
    model = _model()
    scores = magnitudes(model)
    n = sum(s.numel() for s in scores.values())
    mask, report = global_cut(scores, 0.93)
    assert sum(mask.zeros().values()) == round(0.93 * n)
    theta = report["threshold"]
    assert theta == global_threshold(scores, 0.93)
    for name, m in mask.items():  # everything cut is <= θ, everything kept is >= θ
        assert (scores[name][~m] <= theta).all() and (scores[name][m] >= theta).all()


def test_collapse_guard_keeps_layers_alive_and_sparsity_exact():
    model = _model()
    scores = magnitudes(model)
    n = sum(s.numel() for s in scores.values())
    plain, _ = global_cut(scores, 0.999)
    assert any(int(m.sum()) == 0 for m in plain.values()), "the unguarded cut should empty a layer here"
    guarded, report = global_cut(scores, 0.999, min_keep=8)
    assert all(int(m.sum()) >= 8 for m in guarded.values())
    assert sum(guarded.zeros().values()) == round(0.999 * n)
    assert report["guarded"] and all(v > 0 for v in report["guarded"].values())


def test_layerwise_cut_same_fraction_everywhere_and_exact_total():
    scores = magnitudes(_model())
    n = sum(s.numel() for s in scores.values())
    mask = layerwise_cut(scores, 0.9)
    assert sum(mask.zeros().values()) == round(0.9 * n)
    for name, frac in mask.layer_sparsity().items():
        assert abs(frac - 0.9) <= 1 / scores[name].numel() + 1e-9


def test_random_cut_is_seeded_and_exact():
    scores = magnitudes(_model())
    a, _ = random_cut(scores, 0.8, torch.Generator().manual_seed(3))
    b, _ = random_cut(scores, 0.8, torch.Generator().manual_seed(3))
    c, _ = random_cut(scores, 0.8, torch.Generator().manual_seed(4))
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)
    assert a.sparsity() == pytest.approx(round(0.8 * sum(s.numel() for s in scores.values())) /
                                         sum(s.numel() for s in scores.values()))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_cut_refuses_bad_sparsity(bad):
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\)"):
        global_cut(magnitudes(_model()), bad)


def test_apply_and_prune_form_agree():
    model = _model()
    mask, _ = global_cut(magnitudes(model), 0.8)
    zeroed = mask.apply(_model())
    assert Mask.from_model(zeroed).sparsity() == pytest.approx(mask.sparsity())
    reparam = mask.to_prune_form(_model())
    x = torch.rand(5, 1, 8, 8)
    assert torch.allclose(zeroed(x), reparam(x))


def test_mask_check_names_the_mismatch():
    model = _model()
    mask = Mask({"2.weight": torch.ones(3, 3)})
    with pytest.raises(ValueError, match="differ"):
        mask.check(model)


def test_cutting_nothing_keeps_every_weight_and_reports_no_threshold():
    scores = magnitudes(_model())
    mask, report = global_cut(scores, 0.0)
    assert all(bool(m.all()) for m in mask.values())
    assert report["threshold"] is None  # JSON has no -inf


@pytest.mark.parametrize("min_keep", [0, 8])
def test_global_cuts_from_one_sort_equal_global_cut_at_every_kappa(min_keep):
    """The profile's cutter: the same masks and reports as a fresh global_cut at each κ, guard included."""
    from deadwood.pruning.masks import GlobalCuts

    scores = magnitudes(_model(2, "convnet"))
    cutter = GlobalCuts(scores)
    for k in [0.0, 0.1, 0.5, 0.86, 0.95, 0.99, 0.995, 0.999]:
        mask, report = cutter(k, min_keep)
        want, want_report = global_cut(scores, k, min_keep)
        assert report == want_report, k
        assert all(torch.equal(mask[n], want[n]) for n in want), k


def test_global_cuts_with_equal_scores_across_the_cut_choose_as_global_cut_does():
    """Ties at θ: which equal weights go is topk's choice, so the cutter defers to global_cut there."""
    from deadwood.pruning.masks import GlobalCuts

    scores = {"a.weight": torch.tensor([[0.0, 0.0, 0.3], [0.3, 0.3, 0.9]]), "b.weight": torch.tensor([0.3, 0.0, 0.5, 0.7])}
    cutter = GlobalCuts(scores)
    for k in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9]:  # 10 weights: many cuts fall inside a run of 0.0 or 0.3
        mask, report = cutter(k)
        want, want_report = global_cut(scores, k)
        assert sum(mask.zeros().values()) == round(k * 10), k
        assert report == want_report and all(torch.equal(mask[n], want[n]) for n in want), k
