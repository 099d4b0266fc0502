"""The computations behind the *Inside the network* lenses and the robustness explorer, as the
analysis jobs run them (:data:`app.jobs.analysis.ANALYSES` lists them): each takes its inputs
(configurations and plain values), reads finished runs from ``cache_dir``, reports progress through
``on_event`` and returns plain data (dicts, lists, numbers, numpy arrays) that
:func:`app.jobs.analysis.save` stores without pickle. No Streamlit: they run in a worker process.
"""
from __future__ import annotations

import dataclasses

import torch

import deadwood
from deadwood import RunConfig, robustness
from deadwood.analysis import (bound_curve, distortion_sweep, linear_regions_2d, linear_shapes, model_region_bound,
                               similarity_study)
from deadwood.device import resolve_device
from deadwood.errors import RunFileError
from deadwood.events import emit
from deadwood.pruning.region_bound import log10

EXAMPLES = 8  # adversarial examples drawn per model


def loaded(config: RunConfig, cache_dir) -> deadwood.LoadedRun:
    """The finished run of ``config``; RunFileError saying why when its entry is damaged or absent."""
    run, why = deadwood.Cache(cache_dir).load(config)
    if run is None:
        raise RunFileError(why or "this configuration has not been run yet")
    return run


def regions(config: RunConfig, bound_config: RunConfig, sparsities: list, resolution: int, *, on_event=None,
            cache_dir=None) -> dict:
    """Region maps and rank-aware bounds of ``config``'s dense teacher and pruned model (a 2-D
    input network), and Cai et al.'s expected bound against sparsity for ``bound_config``'s MLP."""
    run = loaded(config, cache_dir)
    dense, pruned = run.dense(), run.model
    out = {name: dataclasses.asdict(linear_regions_2d(model, resolution=resolution, on_event=on_event,
                                                      stage=f"regions-{name}"))
           for name, model in (("dense", dense), ("pruned", pruned))}
    out["bounds"] = [log10(model_region_bound(m)) for m in (dense, pruned)]
    shapes = linear_shapes(deadwood.model_for(bound_config))
    rows = []
    emit(on_event, "start", "bound", 0, len(sparsities))
    for i, s in enumerate(sparsities, 1):
        rows += bound_curve(shapes, [s], min_keep=bound_config.min_keep, samples=bound_config.cut.bound_samples,
                            seed=bound_config.seed)
        emit(on_event, "epoch", "bound", i, len(sparsities))
    emit(on_event, "end", "bound", len(sparsities), len(sparsities))
    out["bound_rows"] = rows
    return out


def similarity(config: RunConfig, methods: list, *, on_event=None, cache_dir=None) -> dict:
    """Per-layer SVCCA to the teacher of each method's run, with the reference models."""
    return similarity_study(config, tuple(methods), on_event=on_event, cache_dir=cache_dir)


def distortion(config: RunConfig, methods: list, sparsities: list, *, on_event=None, cache_dir=None) -> list[dict]:
    """Recall distortion α of every method at every sparsity, from the runs' records."""
    return distortion_sweep(config, tuple(methods), tuple(sparsities), on_event=on_event, cache_dir=cache_dir)


def security_attack(attack: str) -> str:
    """The minimum-norm attack that draws the security curve in ``attack``'s norm."""
    if robustness.ATTACK_INFO[attack]["minimum_norm"]:
        return attack
    return "fmn" if robustness.ATTACK_INFO[attack]["norm"] == "linf" else "deepfool-l2"


def explore(config: RunConfig, attack: str, epsilon: float, samples: int, *, on_event=None, cache_dir=None) -> dict:
    """The explorer's three views of a finished run, its dense teacher against its pruned model:
    ``examples`` (the same :data:`EXAMPLES` test inputs attacked against each), ``recall`` (per-class
    recall, clean and under ``attack`` at ``epsilon``, on the same ``samples``) and ``security``
    (security curves from minimal perturbations in ``attack``'s norm)."""
    run = loaded(config, cache_dir)
    device = resolve_device(run.config.device)
    pruned, dense = run.model.to(device), run.dense().to(device)
    test = deadwood.load_dataset(config.dataset, "test", config.data_dir, config.seed, image_size=config.image_size)
    seed, pair = config.seed, (("dense", dense), ("pruned", pruned))

    shown = test.subset(EXAMPLES, seed)
    examples = {}
    emit(on_event, "start", "examples", 0, 2)
    for i, (name, model) in enumerate(pair, 1):
        r = robustness.adversarial_examples(model, shown.x, shown.y, attack, epsilon, seed=seed, device=device)
        examples[name] = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in r.items()}
        emit(on_event, "epoch", "examples", i, 2)
    emit(on_event, "end", "examples", 2, 2)
    recall = robustness.evaluate_pair(dense, pruned, test, attack, [0.0, epsilon], samples=samples, seed=seed,
                                      device=device, warn=False, on_event=on_event, stage="recall")

    def relabel(e):  # security_curve reports as the 'eval' stage: this job calls it 'security'
        if on_event is not None:
            on_event(dataclasses.replace(e, stage="security"))

    curves = {name: robustness.security_curve(model, test, attack=security_attack(attack), samples=samples,
                                              seed=seed, device=device, on_event=relabel)
              for name, model in pair}
    return {"examples": examples, "recall": recall, "security": curves}
