"""Shared fixtures: a tiny configuration that trains in about a second, and a private cache."""
import os

import pytest
import torch

from deadwood import DeadwoodingConfig, EvalConfig, FinetuneConfig, HarpConfig, HydraConfig, RunConfig, TeacherConfig


def tiny(**overrides) -> RunConfig:
    """The embedded default, shrunk: a few epochs per stage, a short PGD on 120 test samples."""
    base = dict(
        teacher=TeacherConfig(epochs=4), deadwooding=DeadwoodingConfig(epochs=3),
        hydra=HydraConfig(epochs=2), harp=HarpConfig(epochs=2), finetune=FinetuneConfig(epochs=2),
        evaluation=EvalConfig(epsilons=(0.0, 0.1), steps=3, samples=120), sparsity=0.9)
    base.update(overrides)
    return RunConfig(**base)


@pytest.fixture
def tiny_config():
    return tiny()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A cache of this test's own, for tests that assert fresh computation: no other test's run,
    teacher or solve can answer for them, whatever the order the suite runs in."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DEADWOOD_CACHE", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """Every test shares one cache under pytest's temp folder (never the user's); tests that need
    fresh computation take ``fresh_cache`` instead."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("DEADWOOD_CACHE")
    os.environ["DEADWOOD_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DEADWOOD_CACHE", None)
    else:
        os.environ["DEADWOOD_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def patient_jobs():
    """Jobs are not stopped as abandoned within a test session unless a test says so: a browser polls
    every page it shows twice a second, but an AppTest page is polled only when its test calls
    ``run()``, so a test running one page to its end leaves the others quiet for as long.
    Tests of abandonment set ``DEADWOOD_ABANDON_AFTER`` themselves (monkeypatch)."""
    old = os.environ.get("DEADWOOD_ABANDON_AFTER")
    os.environ["DEADWOOD_ABANDON_AFTER"] = "86400"
    yield
    if old is None:
        os.environ.pop("DEADWOOD_ABANDON_AFTER", None)
    else:
        os.environ["DEADWOOD_ABANDON_AFTER"] = old


class Saturated(torch.nn.Module):
    """``model`` with its logits x 1e4: softmax is one-hot in float32 and cross-entropy gradients vanish,
    the textbook gradient masking that the robustness checks must flag."""

    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, x):
        return self.m(x) * 1e4
