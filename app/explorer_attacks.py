"""The robustness explorer's computations, cached: models as resources, attack results as data.

Everything is keyed by the finished run's folder (its configuration hash) and the attack's
settings, so revisiting a combination is instant. Results are plain lists and numpy arrays
(``st.cache_data`` pickles them); the attacks themselves are :mod:`deadwood.robustness`'s.
"""
from __future__ import annotations

import streamlit as st
import torch

import deadwood
from deadwood import robustness
from deadwood.device import resolve_device

from .formatting import plain
from .widgets import dataset

EXAMPLES = 8  # adversarial examples drawn per model


def security_attack(attack: str) -> str:
    """The minimum-norm attack that draws the security curve in ``attack``'s norm."""
    if robustness.ATTACK_INFO[attack]["minimum_norm"]:
        return attack
    return "fmn" if robustness.ATTACK_INFO[attack]["norm"] == "linf" else "deepfool-l2"


@st.cache_resource(max_entries=4, show_spinner="Loading the models...")
def models(run_dir: str):
    """``(pruned, dense, device)`` of a finished run, loaded once (eval mode, on the run's device)."""
    loaded = deadwood.load_run(run_dir)
    device = resolve_device(loaded.config.device)
    return loaded.model.to(device), loaded.dense().to(device), str(device)


def _test(config: deadwood.RunConfig):
    return dataset(config.dataset, "test", config.data_dir, config.seed, config.image_size)


@st.cache_data(max_entries=64, show_spinner=False)
def examples(run_dir: str, _config: deadwood.RunConfig, attack: str, epsilon: float, seed: int) -> dict:
    """The same :data:`EXAMPLES` test inputs attacked against the dense and the pruned model."""
    pruned, dense, device = models(run_dir)
    test = _test(_config).subset(EXAMPLES, seed)
    out = {}
    for name, model in (("dense", dense), ("pruned", pruned)):
        r = robustness.adversarial_examples(model, test.x, test.y, attack, epsilon, seed=seed, device=device)
        out[name] = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in r.items()}
    return out


@st.cache_data(max_entries=64, show_spinner=False)
def recall(run_dir: str, _config: deadwood.RunConfig, attack: str, epsilon: float, samples: int,
           seed: int) -> dict:
    """Per-class recall, clean and under ``attack`` at ``epsilon``, of both models on the same samples."""
    pruned, dense, device = models(run_dir)
    return robustness.evaluate_pair(dense, pruned, _test(_config), attack, [0.0, epsilon], samples=samples,
                                    seed=seed, device=device, warn=False)


@st.cache_data(max_entries=64, show_spinner=False)
def security(run_dir: str, _config: deadwood.RunConfig, attack: str, samples: int, seed: int) -> dict:
    """Security curves (robust accuracy against every ε, from minimal perturbations) of both models."""
    pruned, dense, device = models(run_dir)
    test = _test(_config)
    return {name: robustness.security_curve(model, test, attack=attack, samples=samples, seed=seed, device=device)
            for name, model in (("dense", dense), ("pruned", pruned))}



def explore(run_dir: str, config: deadwood.RunConfig, attack: str, epsilon: float, samples: int):
    """Examples, per-class recall and security curves for the explorer, or ``st.stop()`` after a
    one-line message when the attack cannot run as asked. A damaged run (:class:`deadwood.RunFileError`)
    goes up to the page, which offers to compute it again."""
    try:
        return (examples(run_dir, config, attack, epsilon, config.seed),
                recall(run_dir, config, attack, epsilon, samples, config.seed),
                security(run_dir, config, security_attack(attack), samples, config.seed))
    except deadwood.RunFileError:
        raise  # a damaged run: the page offers to compute it again
    except deadwood.DeadwoodError as e:
        st.error(plain(e), icon=":material/block:")
        st.stop()
