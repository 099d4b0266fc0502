"""One contract for every registered pruning method."""
import pytest
import torch

from deadwood import get_method, method_names, run
from deadwood.pruning.masks import prunable
from deadwood.methods import PruneContext
from deadwood.pipeline import finetune, get_teacher, load_data, Cache
from conftest import tiny
from deadwood import DeadwoodingConfig, FinetuneConfig, HarpConfig, HydraConfig, TeacherConfig

SPARSITY = 0.9


# The registry's MLP, and a torchvision architecture with BatchNorm, depthwise convolutions and
# residual connections (shortened: one epoch a stage, two attack steps in HYDRA's and HARP's losses).
MODELS = {"mlp": {}, "torchvision:shufflenet_v2_x0_5": dict(
    teacher=TeacherConfig(epochs=1), deadwooding=DeadwoodingConfig(epochs=1, profile_samples=30),
    hydra=HydraConfig(epochs=1, attack_steps=2), harp=HarpConfig(epochs=1, pgd_steps=2),
    finetune=FinetuneConfig(epochs=1))}


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request):
    settings = dict(model=request.param, **MODELS[request.param])
    config = tiny(sparsity=SPARSITY, **settings)
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    return settings, train, test, teacher


@pytest.mark.parametrize("name", method_names())
def test_method_contract(name, setup):
    settings, train, test, teacher = setup
    config = tiny(sparsity=SPARSITY, method=name, **settings)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = get_method(name).prune(PruneContext(teacher, config, train, test, torch.device("cpu")))
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "the teacher was modified"
    result.mask.check(result.model)
    weights = prunable(result.model)
    total = sum(p.numel() for p in weights.values())
    zeros = sum(int((p == 0).sum()) for p in weights.values())
    target = 0 if not get_method(name).prunes else round(SPARSITY * total)
    assert abs(zeros - target) <= 1, f"{zeros} zeros, expected {target}"

    finetune(result.model, teacher, result.mask, config, train, test)
    for n, p in prunable(result.model).items():
        assert (p[~result.mask[n]] == 0).all(), f"pruned weights of {n} revived during fine-tuning"
    if get_method(name).prunes:
        kept = sum(int(m.sum()) for m in result.mask.values())
        assert sum(int((p != 0).sum()) for p in prunable(result.model).values()) <= kept


@pytest.mark.parametrize("name", method_names())
def test_record_numbers_agree_with_saved_model(name):
    loaded = run(tiny(sparsity=SPARSITY, method=name))
    rec = loaded.record
    weights = prunable(loaded.model)
    assert set(rec.layer_sparsity) == set(weights) == set(rec.layer_sizes)
    for n, p in weights.items():
        assert rec.layer_sizes[n] == p.numel()
        assert rec.layer_sparsity[n] == pytest.approx(float((p == 0).float().mean()))
    total = sum(p.numel() for p in weights.values())
    assert rec.global_sparsity == pytest.approx(sum(int((p == 0).sum()) for p in weights.values()) / total)
    expected = SPARSITY if get_method(name).prunes else 0.0
    assert abs(rec.global_sparsity - expected) <= 1.5 / total


def test_deadwooding_history_holds_multipliers_violations_and_dead_wood():
    rec = run(tiny(method="deadwooding")).record
    dual = [h for h in rec.history if h["phase"] == "dual"]
    assert len(dual) == 3
    names = rec.prune_info["constraints"]
    layers = list(rec.layer_sizes)
    assert names == [f"rep:{n}" for n in layers] + ["kd", "rob"]
    for h in dual:
        assert set(h["lambdas"]) == set(names) == set(h["violations"])
        assert set(h["dead_fraction"]) == set(layers)
        assert all(v >= 0 for v in h["lambdas"].values())
        assert 0 <= h["accuracy"] <= 1 and h["objective"] > 0
    # A multiplier rises only where its constraint was violated on average.
    first = dual[0]
    for n in names:
        assert (first["lambdas"][n] > 0) == (first["violations"][n] > 0)
