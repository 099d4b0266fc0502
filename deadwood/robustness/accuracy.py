"""Clean predictions and accuracy: the measurement every stage, the profile and the record share."""
from __future__ import annotations

import torch
from torch import nn

from ..data.datasets import ArrayDataset, batches

@torch.no_grad()
def predict(model: nn.Module, ds: ArrayDataset, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels for every sample of ``ds`` (model in eval mode)."""
    was = model.training
    model.eval()
    out = torch.cat([model(x).argmax(1) for x, _ in batches(ds, batch_size)])
    model.train(was)
    return out


def accuracy(model: nn.Module, ds: ArrayDataset, batch_size: int = 1024) -> float:
    """Fraction of ``ds`` classified correctly (an exact count over ``len(ds)``)."""
    return int((predict(model, ds, batch_size) == ds.y).sum()) / len(ds)
