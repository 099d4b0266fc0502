"""Multipliers: known answers from convex problems whose optimum is known in closed form."""
import pytest
import torch

from deadwood.methods.deadwooding.multipliers import RULES, Multipliers
from deadwood.errors import ConfigError


def test_violated_constraint_raises_its_multiplier_satisfied_one_stays_zero():
    m = Multipliers(["violated", "satisfied"], step_size=0.5)
    for _ in range(5):
        m.observe(torch.tensor([0.3, -0.2]))
    lam = m.update()
    assert lam["violated"] == pytest.approx(0.5 * 0.3)
    assert lam["satisfied"] == 0.0
    m.observe(torch.tensor([0.1, -1.0]))
    lam = m.update()
    assert lam["violated"] == pytest.approx(0.15 + 0.05)
    assert lam["satisfied"] == 0.0


def test_multipliers_start_at_zero_and_never_go_negative():
    for rule in RULES:
        m = Multipliers(["a"], rule=rule, step_size=1.0)
        assert m.values() == {"a": 0.0}
        m.observe(torch.tensor([-5.0]))
        assert m.update()["a"] >= 0.0


def _solve(rule, epochs=300, steps=10):
    """min x^2  s.t.  1 - x <= 0: optimum x* = 1 with multiplier λ* = 2 (KKT: 2x* = λ*)."""
    x = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.05)
    m = Multipliers(["c"], rule=rule, step_size=0.5, penalty=1.0, kp=0.5)
    for _ in range(epochs):
        for _ in range(steps):
            g = 1 - x
            loss = (x ** 2).sum() + m.lagrangian(g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            m.observe(g)
        m.update()
    return float(x.detach()), m.values()["c"]


@pytest.mark.parametrize("rule", ["gda", "augmented-lagrangian", "nupi"])
def test_lagrangian_rules_reach_the_known_optimum(rule):
    x, lam = _solve(rule)
    assert x == pytest.approx(1.0, abs=1e-3)
    assert lam == pytest.approx(2.0, abs=1e-2)


def test_dual_ascent_reaches_feasibility_with_an_exact_penalty():
    # max(0, g) makes the penalty exact: any λ >= λ* = 2 holds x at the boundary,
    # and the multiplier only rises, so it ends at or above λ*.
    x, lam = _solve("dual-ascent")
    assert x == pytest.approx(1.0, abs=0.06)
    assert lam >= 2.0


def test_unknown_rule_is_named():
    with pytest.raises(ConfigError, match="unknown dual update 'adam'.*dual-ascent"):
        Multipliers(["a"], rule="adam")
