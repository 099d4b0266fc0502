"""AutoAttack through torchattacks: the one module that imports it (on first use only).

AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks"), the "standard" version, L-inf (``autoattack``) or L2
(``autoattack-l2``): APGD-CE, then APGD-T, FAB-T and Square, each run only on the samples that
every earlier one left correctly classified, as the reference implementation (fra31/auto-attack,
``AutoAttack.run_standard_evaluation``) runs them. The components are torchattacks 3.5.1's
(``APGD``, ``APGDT``, ``FAB``, ``Square``), built here with the reference's ``set_version('standard')``
settings rather than through ``torchattacks.AutoAttack``, because that class departs from them:

============  =====================================  ==================================  ============
component     reference (fra31/auto-attack)          torchattacks.AutoAttack 3.5.1       used here
============  =====================================  ==================================  ============
APGD-CE       n_iter 100, 1 restart, rho .75         steps 10 (its default)              100
APGD-T        n_iter 100, 1 restart, 9 targets       steps 10, n_classes - 1 targets     100, C - 1
FAB-T         n_iter 100, 1 restart, 9 targets,      steps 10, multi-targeted,           100
              alpha_max .1, eta 1.05, beta .9        same alpha_max, eta, beta
Square        n_queries 5000, p_init .8, 1 restart,  n_queries 5000, p_init .8,          resc False
              margin loss, resc_schedule False       resc_schedule True (its default)
============  =====================================  ==================================  ============

Checked against the reference source: the order of the components, that each runs on the still
robust samples only, APGD's schedule (checkpoints at 22 %, then shrinking by 3 % to at least 6 % of
the iterations; step halving when fewer than 75 % of the steps raised the loss), APGD-T's and
FAB-T's targets (the 2nd to the C-th most likely class; the reference fixes 9 for 10 classes),
the CE, targeted-DLR and margin losses. With fewer than 10 classes the targets are C - 1. The
random starts come from ``seed`` and the batch index (each component reseeds the global generator,
which is restored afterwards). ``steps`` is fixed at 100: the standard version takes no tuning.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..errors import ConfigError
from .attacking import batch_seed, seeded
from .specs import AUTOATTACK_COMPONENTS, AUTOATTACK_STEPS, SQUARE_QUERIES, distance


@functools.cache
def _torchattacks():
    """torchattacks, imported on first use (it is only needed for AutoAttack)."""
    import torchattacks

    return torchattacks


class Images(nn.Module):
    """``model`` seen through 4-D inputs (N, C, H, W), which torchattacks' APGD and Square need;
    vector inputs (D,) travel as (1, a, D/a), ``a`` the largest divisor of D up to √D."""

    def __init__(self, model: nn.Module, input_shape, device):
        super().__init__()
        self.model, self.shape = model, tuple(input_shape)
        if len(self.shape) == 3:
            self.view = self.shape
        else:
            d = math.prod(self.shape)
            a = max(k for k in range(1, math.isqrt(d) + 1) if d % k == 0)
            self.view = (1, a, d // a)
        # torchattacks reads its device from the first parameter (and prints when there is none)
        self.anchor = nn.Parameter(torch.empty(0, device=device), requires_grad=False)

    def forward(self, x):
        return self.model(x.reshape(len(x), *self.shape))


class AutoAttack:
    """AutoAttack's standard version on one batch, component by component (module docstring)."""

    def __init__(self, model: nn.Module, norm: str, num_classes: int, input_shape, device):
        if norm not in ("linf", "l2"):
            raise ConfigError(f"AutoAttack runs in linf or l2, not {norm!r}")
        if num_classes < 2:
            raise ConfigError(f"AutoAttack needs at least 2 classes, got {num_classes}")
        self.net = Images(model, input_shape, device)
        self.norm, self.classes, self.device = {"linf": "Linf", "l2": "L2"}[norm], num_classes, device
        self._norm = norm

    def components(self, eps: float, seed: int) -> list:
        ta, net, norm, c = _torchattacks(), self.net, self.norm, self.classes
        steps = AUTOATTACK_STEPS
        attacks = [
            ta.APGD(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, loss="ce", eot_iter=1, rho=.75),
            ta.APGDT(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, eot_iter=1, rho=.75,
                     n_classes=c),
            ta.FAB(net, norm=norm, eps=eps, steps=steps, n_restarts=1, seed=seed, multi_targeted=True, n_classes=c,
                   alpha_max=.1, eta=1.05, beta=.9),
            ta.Square(net, norm=norm, eps=eps, n_queries=SQUARE_QUERIES, n_restarts=1, seed=seed, p_init=.8,
                      loss="margin", resc_schedule=False),
        ]
        for a in attacks:
            a.set_device(self.device)
        return list(zip(AUTOATTACK_COMPONENTS, attacks))

    def __call__(self, x, y, eps: float, seed: int, batch: int, done=None):
        """``(x_adv, correct, after)``: the adversarial batch (the input where no component
        succeeded), per-sample correctness under the whole ensemble, and the count still
        correct after each component. ``done()`` is called after each component."""
        s = batch_seed(seed, batch)
        xi = x.reshape(len(x), *self.net.view)
        adv = xi.clone()
        with torch.no_grad():
            correct = self.net(xi).argmax(1) == y
        after = []
        with seeded(seed, batch, self.device):  # the components reseed the global generator: restored after
            for _, attack in self.components(eps, s):
                idx = correct.nonzero().flatten()
                if len(idx):
                    xa = attack(xi[idx], y[idx]).detach()
                    with torch.no_grad():
                        # a success counts only inside the budget and the box (each component keeps to
                        # them; this makes sure, as the reference's final check does)
                        inside = (distance(self._norm, xi[idx], xa) <= eps * (1 + 1e-5) + 1e-7) \
                            & (xa.flatten(1).amin(1) >= 0) & (xa.flatten(1).amax(1) <= 1)
                        broken = (self.net(xa).argmax(1) != y[idx]) & inside
                    adv[idx[broken]] = xa[broken]
                    correct[idx[broken]] = False
                after.append(int(correct.sum()))
                if done:
                    done()
        return adv.reshape(x.shape), correct, after
