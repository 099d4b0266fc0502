"""torchvision architectures: built untrained, fitted to small and grey inputs, refused clearly."""
import pytest
import torch
import torchvision
from torch import nn

from deadwood.errors import ConfigError
from deadwood.models.zoo import build_torchvision, torchvision_names


def test_names_are_torchvision_classifiers():
    names = torchvision_names()
    assert {"resnet18", "mobilenet_v3_small", "vit_b_16"} <= set(names)
    assert "fasterrcnn_resnet50_fpn" not in names  # detection, not classification
    assert names == sorted(names)


def test_resnet18_at_32px_gets_the_cifar_stem():
    model = build_torchvision("resnet18", (3, 32, 32), 10)
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(model.maxpool, nn.Identity)
    assert model.training  # returned as torchvision builds it
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_at_64px_keeps_its_stem():
    model = build_torchvision("resnet18", (3, 64, 64), 5)
    assert model.conv1.kernel_size == (7, 7) and isinstance(model.maxpool, nn.MaxPool2d)


def test_mobilenet_v3_small_with_depthwise_convs():
    model = build_torchvision("mobilenet_v3_small", (3, 32, 32), 7)
    assert any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name, stem", [("squeezenet1_1", "features.0"), ("resnet18", "conv1")])
def test_one_channel_input_rebuilds_the_stem(name, stem):
    model = build_torchvision(name, (1, 28, 28), 10)
    conv = model.get_submodule(stem)
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 1 and conv.weight.shape[1] == 1
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_name_lists_close_matches():
    with pytest.raises(ConfigError, match=r"unknown torchvision architecture 'resnet_18'.*resnet18.*torchvision_names"):
        build_torchvision("resnet_18", (3, 32, 32), 10)


@pytest.mark.parametrize("name", ["squeezenet1_1", "alexnet"])
def test_input_too_small_is_a_config_error(name):
    with pytest.raises(ConfigError) as info:
        build_torchvision(name, (3, 8, 8), 10)
    message = str(info.value)
    assert f"'{name}'" in message and "3x8x8" in message and "too small" in message
    assert "\n" not in message


def test_nothing_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    with pytest.raises(AssertionError, match="download"):  # the patch does catch torchvision's weights
        torchvision.models.get_model("squeezenet1_1", weights="DEFAULT")
    model = build_torchvision("squeezenet1_1", (3, 32, 32), 4)
    assert model.classifier[1].out_channels == 4
