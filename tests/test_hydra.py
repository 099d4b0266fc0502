"""HYDRA-style baseline: scores start at |w|, train on the adversarial loss with weights frozen,
through a straight-through per-layer top-k."""
import torch
import torch.nn.functional as F

from deadwood import build_model, dataset_info, get_method
from deadwood.pruning.masks import layerwise_cut, magnitudes, prunable
from deadwood.methods import PruneContext
from deadwood.methods.hydra import ScoredModel
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _model(seed=0):
    return build_model("mlp", dataset_info("digits"), seed=seed)


def test_untrained_scores_give_the_layerwise_magnitude_mask():
    """Scores initialised from |w|: before any training the mask is magnitude-layerwise's."""
    model = _model()
    scored = ScoredModel(model, 0.9)
    expected = layerwise_cut(magnitudes(model), 0.9)
    mask = scored.mask()
    for n in expected:
        assert torch.equal(mask[n], expected[n]), n
    assert abs(mask.sparsity() - 0.9) < 1e-4


def test_score_gradient_is_straight_through_and_weights_get_none():
    """d loss / d score = w * d loss / d(w m): the top-k passes the gradient through unchanged."""
    model = _model()
    for p in model.parameters():
        p.requires_grad_(False)
    scored = ScoredModel(model, 0.5)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    F.cross_entropy(scored(x), y).backward()

    # The same loss through explicitly masked weights, differentiated in the effective weights.
    mask = scored.mask()
    effective = {n: (w * mask[n]).clone().requires_grad_(True) for n, w in prunable(model).items()}
    out = torch.func.functional_call(model, effective, (x,))
    grads = torch.autograd.grad(F.cross_entropy(out, y), list(effective.values()))
    for (n, w), g, s in zip(prunable(model).items(), grads, scored.scores):
        torch.testing.assert_close(s.grad, w * g)
        assert w.grad is None


def test_hydra_trains_scores_only_and_keeps_a_per_layer_budget():
    config = tiny(method="hydra", sparsity=0.9)
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    result = get_method("hydra").prune(PruneContext(teacher, config, train, test, device))
    start = layerwise_cut(magnitudes(teacher), 0.9)
    moved = sum(int((result.mask[n] != start[n]).sum()) for n in start)
    assert moved > 0, "score training changed nothing"
    for n, w in prunable(result.model).items():
        t = prunable(teacher)[n]
        kept = result.mask[n]
        assert torch.equal(w[kept], t[kept]), f"{n}: kept weights changed (they are frozen)"
        assert int(kept.sum()) == int(start[n].sum()), f"{n}: the per-layer budget moved"
    assert [h["phase"] for h in result.history] == ["hydra"] * config.hydra.epochs
