"""Lagrange multipliers for inequality constraints ``g_j(W) <= 0``, on cooper-optim.

One object holds every multiplier of a problem. During training call
:meth:`Multipliers.lagrangian` on each mini-batch (it returns the term added to the
primal loss) and :meth:`Multipliers.observe` with the batch's violations; call
:meth:`Multipliers.update` at the end of each dual period (an epoch by default).

Rules (``rule``):

- ``dual-ascent`` — the Lagrangian-dual scheme of Fioretto et al. (2020), the
  default: primal term ``Σ λ_j max(0, g_j)`` and, once per period,
  ``λ_j <- max(0, λ_j + s · mean max(0, g_j))``. Multipliers never fall.
- ``gda`` — the plain Lagrangian ``Σ λ_j g_j`` with projected gradient ascent
  ``λ_j <- max(0, λ_j + s · mean g_j)``: a satisfied constraint lowers its multiplier.
- ``augmented-lagrangian`` — cooper's augmented Lagrangian: primal term
  ``λ·g + c/2 · relu(g)^2``, dual step ``λ <- max(0, λ + c · mean g)``.
- ``nupi`` — cooper's nuPI controller on the multipliers (proportional gain ``kp``):
  damps the overshoot of plain ascent.

All four go through cooper's formulations, multiplier modules and projection;
cooper's constrained optimisers are not used because the primal step must stay
ours (masks, mixed precision, events). docs/method.md compares the rules.
"""
from __future__ import annotations

import cooper
import torch

from ...errors import ConfigError

RULES = ("dual-ascent", "gda", "augmented-lagrangian", "nupi")


class _Problem(cooper.ConstrainedMinimizationProblem):
    def __init__(self, constraint: cooper.Constraint):
        super().__init__()
        self.constraints_ = constraint  # registered by cooper's __setattr__

    def compute_cmp_state(self, *args, **kwargs):  # pragma: no cover - we build states ourselves
        raise NotImplementedError


class Multipliers:
    """Multipliers ``λ_j >= 0`` (start at 0) for the named constraints ``g_j <= 0``."""

    def __init__(self, names: list[str], rule: str = "dual-ascent", step_size: float = 0.1,
                 penalty: float = 1.0, kp: float = 1.0, device="cpu"):
        if rule not in RULES:
            raise ConfigError(f"unknown dual update '{rule}'; choose one of: {', '.join(RULES)}")
        if step_size <= 0:
            raise ConfigError(f"dual step size must be positive, got {step_size}")
        self.names, self.rule, self.step = list(names), rule, step_size
        j = len(self.names)
        multiplier = cooper.multipliers.DenseMultiplier(num_constraints=j, device=torch.device(device))
        kwargs = {}
        formulation = cooper.formulations.Lagrangian
        if rule == "augmented-lagrangian":
            formulation = cooper.formulations.AugmentedLagrangian
            kwargs["penalty_coefficient"] = cooper.penalty_coefficients.DensePenaltyCoefficient(
                torch.full((j,), float(penalty), device=device))
        self.constraint = cooper.Constraint(cooper.ConstraintType.INEQUALITY, formulation_type=formulation,
                                            multiplier=multiplier, **kwargs)
        self.problem = _Problem(self.constraint)
        params = list(self.problem.dual_parameters())
        if rule == "nupi":
            self.optimizer = cooper.optim.nuPI(params, lr=step_size, Kp=torch.tensor(kp), Ki=torch.tensor(1.0),
                                               maximize=True)
        else:
            lr = penalty if rule == "augmented-lagrangian" else step_size
            self.optimizer = torch.optim.SGD(params, lr=lr, maximize=True)
        self._sum = torch.zeros(j, device=device)
        self._count = 0

    def _violation(self, g: torch.Tensor) -> torch.Tensor:
        # dual-ascent drives both sides with max(0, g): the paper group's scheme.
        return g.clamp(min=0) if self.rule == "dual-ascent" else g

    def lagrangian(self, g: torch.Tensor) -> torch.Tensor:
        """The multiplier terms of the primal Lagrangian for violations ``g`` (shape ``[J]``)."""
        state = cooper.CMPState(loss=torch.zeros((), device=g.device, dtype=g.dtype),
                                observed_constraints={self.constraint: cooper.ConstraintState(
                                    violation=self._violation(g), contributes_to_dual_update=False)})
        return state.compute_primal_lagrangian().lagrangian

    def observe(self, g: torch.Tensor) -> None:
        """Accumulate one batch's violations for the next dual update."""
        self._sum += g.detach().float()
        self._count += 1

    @torch.no_grad()
    def mean_violation(self) -> torch.Tensor:
        return self._sum / max(self._count, 1)

    def update(self) -> dict[str, float]:
        """One dual step on the mean violations observed since the last one; returns the new λ."""
        if self._count == 0:
            return self.values()
        g = self.mean_violation()
        with torch.enable_grad():
            state = cooper.CMPState(observed_constraints={self.constraint: cooper.ConstraintState(
                violation=self._violation(g), contributes_to_primal_update=False)})
            self.optimizer.zero_grad()
            state.compute_dual_lagrangian().backward()
        self.optimizer.step()
        self.constraint.multiplier.post_step_()  # projection onto λ >= 0
        self._sum.zero_()
        self._count = 0
        return self.values()

    def values(self) -> dict[str, float]:
        w = self.constraint.multiplier.weight.detach().cpu().tolist()
        return dict(zip(self.names, w))

    def tensor(self) -> torch.Tensor:
        return self.constraint.multiplier.weight.detach()
