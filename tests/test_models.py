import pytest
import torch

from deadwood import ConfigError, build_model, dataset_info, model_names
from deadwood.pruning.masks import prunable

FITS = {"mlp": ["digits", "moons", "mnist", "cifar10"], "lenet5": ["mnist", "cifar10"],
        "convnet": ["digits", "mnist", "cifar10"], "vgg": ["cifar10", "svhn"], "resnet20": ["cifar10", "svhn"]}


@pytest.mark.parametrize("name", model_names())
def test_models_map_unit_inputs_to_class_scores(name):
    for ds in FITS[name]:
        info = dataset_info(ds)
        model = build_model(name, info, seed=0).eval()
        out = model(torch.rand(2, *info.input_shape))
        assert out.shape == (2, info.num_classes)
        assert prunable(model) and all(p.dim() > 1 for p in prunable(model).values())


def test_seed_fixes_initial_weights():
    info = dataset_info("digits")
    a, b, c = (build_model("mlp", info, seed=s).state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name,ds,why", [("vgg", "digits", "32x32"), ("resnet20", "mnist", "32x32"),
                                          ("lenet5", "moons", "image inputs"), ("convnet", "moons", "image")])
def test_models_refuse_data_of_the_wrong_shape(name, ds, why):
    with pytest.raises(ConfigError, match=f"model '{name}' does not fit dataset '{ds}'.*{why}"):
        build_model(name, dataset_info(ds))


def test_normalisation_lives_inside_the_model():
    # Constant inputs in [0, 1] reach the first layer normalised: the mean input maps to 0.
    info = dataset_info("digits")
    model = build_model("mlp", info, seed=0)
    norm = model[0]
    x = torch.full((1, 1, 8, 8), info.mean[0])
    assert torch.allclose(norm(x), torch.zeros_like(x))
