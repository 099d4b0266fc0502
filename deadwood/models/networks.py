"""The registry's own networks: mlp, lenet5, convnet, vgg (VGG-16 with BatchNorm) and resnet20 (He et
al.'s CIFAR ResNet-20). Each takes inputs in [0, 1] and normalises them in its first layer
(:class:`Normalize`), so attacks work on the box (0, 1) and the statistics travel in the state_dict.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.registry import DatasetInfo


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; buffers, so they travel in the state_dict."""

    def __init__(self, mean, std, image: bool):
        super().__init__()
        shape = (-1, 1, 1) if image else (-1,)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x):
        return (x - self.mean) / self.std


def mlp(info: DatasetInfo, hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    layers: list[nn.Module] = [Normalize(info.mean, info.std, info.is_image), nn.Flatten()]
    width = 1
    for d in info.input_shape:
        width *= d
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, info.num_classes))
    return nn.Sequential(*layers)


def lenet5(info: DatasetInfo) -> nn.Module:
    c, h, _ = info.input_shape
    pad = 2 if h == 28 else 0  # the classic trick: 28x28 MNIST padded to LeNet's 32x32
    return nn.Sequential(
        Normalize(info.mean, info.std, True),
        nn.Conv2d(c, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, info.num_classes),
    )


def convnet(info: DatasetInfo) -> nn.Module:
    c = info.input_shape[0]
    return nn.Sequential(
        Normalize(info.mean, info.std, True),
        nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64 * 16, 128), nn.ReLU(),
        nn.Linear(128, info.num_classes),
    )


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg(info: DatasetInfo, cfg=_VGG16) -> nn.Module:
    layers: list[nn.Module] = [Normalize(info.mean, info.std, True)]
    c = info.input_shape[0]
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    layers += [nn.Flatten(), nn.Linear(c, info.num_classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: three stages of three basic blocks (16, 32, 64 channels)."""

    def __init__(self, info: DatasetInfo):
        super().__init__()
        self.normalize = Normalize(info.mean, info.std, True)
        self.conv = nn.Conv2d(info.input_shape[0], 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, info.num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(self.normalize(x))))
        x = self.blocks(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
