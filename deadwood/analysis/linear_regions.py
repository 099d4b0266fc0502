"""Linear regions of a ReLU network over a 2-D plane of its input space (Cai et al., CPAIOR 2023).

A ReLU network is affine on every set of inputs that share one activation pattern
(which ReLUs are on), and each such set is convex. :func:`linear_regions_2d` evaluates
the network on a grid over a plane and counts the distinct patterns: every region the
grid touches is counted once, so the count is exact once the grid is fine enough to
hit every region inside the window, and a lower bound otherwise. For 2-D inputs
(``moons``) the plane is the input space itself; for images it is the plane through
three inputs, ``x(s, t) = a + s (b − a) + t (c − a)`` (:func:`plane_through`).

Only ``nn.ReLU`` modules are seen (hooks); max-pooling also splits regions and is not
counted, and models that call ``torch.relu`` directly (resnet20) are refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..events import OnEvent, emit


@dataclass(frozen=True)
class Plane:
    """The input-space plane ``origin + s·u + t·v``."""

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def points(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * self.origin.dim()
        return self.origin + s.view(shape) * self.u + t.view(shape) * self.v


def plane_through(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Plane:
    """The plane with ``a`` at (0, 0), ``b`` at (1, 0) and ``c`` at (0, 1)."""
    a, b, c = (torch.as_tensor(x, dtype=torch.float32) for x in (a, b, c))
    if not a.shape == b.shape == c.shape:
        raise ValueError(f"the three inputs differ in shape: {tuple(a.shape)}, {tuple(b.shape)}, {tuple(c.shape)}")
    return Plane(a, b - a, c - a)


@dataclass
class Regions:
    """Activation regions on a ``resolution x resolution`` grid (row ``i`` is ``ys[i]``)."""

    count: int  # distinct activation patterns met on the grid
    labels: np.ndarray  # (res, res) region id per grid point, numbered in order of first appearance
    predictions: np.ndarray  # (res, res) predicted class per grid point (for the decision boundary)
    xs: np.ndarray
    ys: np.ndarray
    neurons: int  # ReLU units whose on/off state makes the pattern

    def __int__(self) -> int:
        return self.count


def relu_modules(model: nn.Module) -> list[nn.Module]:
    mods = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not mods:
        raise ValueError(f"linear regions need nn.ReLU modules; {type(model).__name__} has none "
                         "(it may apply torch.relu directly)")
    return mods


@torch.no_grad()
def linear_regions_2d(model: nn.Module, xlim=(0.0, 1.0), ylim=(0.0, 1.0), resolution: int = 200,
                      plane: Plane | None = None, batch_size: int = 4096, *, on_event: OnEvent = None,
                      stage: str = "regions") -> Regions:
    """Count the distinct ReLU activation patterns over a grid of a 2-D input plane.

    Without ``plane`` the model must take 2-D inputs and the grid covers ``xlim x ylim``
    of the input space; with ``plane`` it covers ``(s, t) ∈ xlim x ylim`` of that plane.
    Progress goes to ``on_event`` as 'start'/'epoch'/'end' events of ``stage``, one 'epoch' per
    batch of grid points (a callback that raises stops the count there).
    """
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    device = next(model.parameters()).device
    xs = np.linspace(xlim[0], xlim[1], resolution)
    ys = np.linspace(ylim[0], ylim[1], resolution)
    gx, gy = np.meshgrid(xs, ys)  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    s = torch.tensor(gx.reshape(-1), dtype=torch.float32)
    t = torch.tensor(gy.reshape(-1), dtype=torch.float32)
    if plane is None:
        first = next(p for p in model.parameters() if p.dim() > 1)
        if first.dim() != 2 or first.shape[1] != 2:
            raise ValueError("this model does not take 2-D inputs; pass plane=plane_through(a, b, c)")
        points = torch.stack([s, t], 1)
    else:
        points = plane.points(s, t)

    captured: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, args, out: captured.append((out > 0).flatten(1)))
               for m in relu_modules(model)]
    was = model.training
    model.eval()
    ids: dict[bytes, int] = {}
    labels = np.empty(len(points), dtype=np.int64)
    preds = np.empty(len(points), dtype=np.int64)
    neurons = 0
    batches = -(-len(points) // batch_size)
    emit(on_event, "start", stage, 0, batches)
    try:
        for i in range(0, len(points), batch_size):
            captured.clear()
            logits = model(points[i:i + batch_size].to(device))
            preds[i:i + len(logits)] = logits.argmax(1).cpu().numpy()
            pattern = torch.cat(captured, 1).cpu().numpy()
            neurons = pattern.shape[1]
            packed = np.packbits(pattern, axis=1)
            uniq, inverse = np.unique(packed, axis=0, return_inverse=True)
            local = np.array([ids.setdefault(row.tobytes(), len(ids)) for row in uniq])
            labels[i:i + len(logits)] = local[inverse.reshape(-1)]
            emit(on_event, "epoch", stage, i // batch_size + 1, batches)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    # Renumber in order of first appearance on the grid, so colours are stable between calls.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(first)] = np.arange(len(first))
    labels = renumber[inverse.reshape(-1)]
    shape = (resolution, resolution)
    emit(on_event, "end", stage, batches, batches)
    return Regions(len(ids), labels.reshape(shape), preds.reshape(shape), xs, ys, neurons)
