"""The undecayed pruning score |−θ·∇L + ε·θ²| (Good et al., NeurIPS 2022)."""
import torch
import torch.nn.functional as F

from deadwood import TeacherConfig, get_method
from deadwood.pruning.masks import global_cut, prunable
from deadwood.methods import PruneContext
from deadwood.methods.undecayed import undecayed_scores
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _setup(**teacher):
    config = tiny(method="undecayed", teacher=TeacherConfig(epochs=4, **teacher))
    device = torch.device("cpu")
    train, test = load_data(config, device)
    t, _ = get_teacher(config, train, test, device, Cache())
    return config, PruneContext(t, config, train, test, device)


def test_score_is_the_formula_with_the_full_batch_gradient():
    config, ctx = _setup(attack="none", weight_decay=1e-3)
    model = ctx.student()
    scores = undecayed_scores(model, ctx, 1e-3)
    # Independent: one forward pass over the whole training split, mean cross-entropy.
    ref = ctx.student()
    params = prunable(ref)
    grads = torch.autograd.grad(F.cross_entropy(ref(ctx.train.x), ctx.train.y), list(params.values()))
    for (n, p), g in zip(params.items(), grads):
        want = (-p.detach() * g + 1e-3 * p.detach() ** 2).abs()
        assert torch.allclose(scores[n], want, atol=1e-7, rtol=1e-4), n
    result = get_method("undecayed").prune(ctx)
    mask, _ = global_cut(scores, config.sparsity, config.min_keep)
    assert all(torch.equal(result.mask[n], mask[n]) for n in mask)
    assert result.info["weight_decay"] == 1e-3 and "ε·θ²" in result.info["score"]


def test_decay_term_changes_the_ranking_and_zero_decay_is_the_taylor_score():
    config, ctx = _setup(attack="none", weight_decay=1e-2)
    model = ctx.student()
    with_decay, taylor = undecayed_scores(model, ctx, 1e-2), undecayed_scores(model, ctx, 0.0)
    for n, p in prunable(model).items():
        # ε = 0 leaves |θ·∇L|; the decay term is what separates the two.
        diff = (with_decay[n] - taylor[n]).abs()
        assert (diff <= 1e-2 * p.detach() ** 2 + 1e-7).all()
    a, _ = global_cut(with_decay, 0.9)
    b, _ = global_cut(taylor, 0.9)
    assert any(not torch.equal(a[n], b[n]) for n in a)
    info = get_method("undecayed").prune(_setup()[1]).info  # the default teacher: ε = 0
    assert info["weight_decay"] == 0.0 and "first-order Taylor" in info["score"]


def test_adversarial_teacher_scores_use_its_training_attack():
    _, ctx = _setup(attack="fgsm")
    model = ctx.student()
    a, b = undecayed_scores(model, ctx, 0.0), undecayed_scores(model, ctx, 0.0)
    assert all(torch.equal(a[n], b[n]) for n in a), "the scoring attack must be seeded"
    natural = PruneContext(ctx.teacher, tiny(teacher=TeacherConfig(epochs=4, attack="none")), ctx.train,
                           ctx.test, ctx.device)
    c = undecayed_scores(model, natural, 0.0)
    assert any(not torch.allclose(a[n], c[n]) for n in a)
