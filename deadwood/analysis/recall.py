"""Recall distortion (Good et al., "Recall Distortion in Neural Network Pruning and the Undecayed
Pruning Algorithm", NeurIPS 2022).

Pruning rarely costs every class the same. For class ``c`` the normalised recall
balance is

    B_c = (recall_c − accuracy) / accuracy,

and the intensification statistic of a pruned model against its dense parent is

    α = Σ_c B_c^dense · B_c^pruned / Σ_c (B_c^dense)²,

the least-squares slope of the pruned balances on the dense ones: ``α > 1`` means
pruning intensified the dense model's imbalance (strong classes got relatively
stronger, weak ones weaker), ``α < 1`` that it attenuated it.

"Under attack" uses robust recall and robust accuracy at the run's epsilon, as
measured by :func:`deadwood.robustness.evaluation.evaluate` (foolbox L-inf PGD): a sample counts as
recalled when the attack on that model fails. Every run record already holds that
evaluation for the pruned model and its teacher, on the same samples with the same
random starts, so :func:`record_distortion` needs no new attack.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data.datasets import ArrayDataset
from ..events import emit
from ..robustness import per_class_recall as robust_recall


def per_class_recall(pred, y, num_classes: int) -> np.ndarray:
    """``recall_c`` = correct predictions of class ``c`` / samples of class ``c``, as an array
    (nan for a class without samples): :func:`deadwood.robustness.per_class_recall` on
    predictions, its None turned into nan for the arithmetic here."""
    pred, y = torch.as_tensor(pred).cpu(), torch.as_tensor(y).cpu()
    recall = robust_recall(pred == y, y, num_classes)
    return np.array([math.nan if r is None else r for r in recall], dtype=float)


def recall_balance(recall, accuracy: float) -> np.ndarray:
    """``B_c = (recall_c − accuracy) / accuracy`` (nan for a class without samples, and
    everywhere when accuracy is 0)."""
    recall = np.array([np.nan if r is None else r for r in recall], dtype=float)
    if accuracy <= 0:
        return np.full_like(recall, np.nan)
    return (recall - accuracy) / accuracy


def intensification(b_dense, b_pruned) -> float:
    """``α = Σ B^dense · B^pruned / Σ (B^dense)²`` over the classes where both are defined;
    nan when the dense balances are all zero (no imbalance to intensify)."""
    bd, bp = np.asarray(b_dense, dtype=float), np.asarray(b_pruned, dtype=float)
    if bd.shape != bp.shape:
        raise ValueError(f"balances of {bd.shape} and {bp.shape} classes")
    ok = np.isfinite(bd) & np.isfinite(bp)
    denom = float((bd[ok] ** 2).sum())
    if denom == 0:
        return math.nan
    return float((bd[ok] * bp[ok]).sum() / denom)


def _at(result: dict, epsilon: float) -> dict:
    """Accuracy, per-class recall and balances of one robustness evaluation at ``epsilon``."""
    eps = [float(e) for e in result["epsilons"]]
    match = [i for i, e in enumerate(eps) if abs(e - epsilon) < 1e-9]
    if not match:
        raise ValueError(f"the evaluation has no epsilon {epsilon:g} (it has {', '.join(f'{e:g}' for e in eps)})")
    i = match[0]
    acc = float(result["accuracy"][i])
    recall = [math.nan if r is None else float(r) for r in result["per_class_recall"]["by_epsilon"][i]]
    return {"epsilon": float(epsilon), "accuracy": acc, "recall": recall,
            "balance": recall_balance(recall, acc).tolist()}


def distortion_from_results(dense: dict, pruned: dict, epsilon: float) -> dict:
    """Balances and ``α`` from two :func:`deadwood.robustness.evaluation.evaluate` results on the same
    samples: ``{"clean": {...}, "attack": {...}}`` (no "attack" when ``epsilon`` is 0).
    Each part holds ``epsilon``, the ``dense`` and ``pruned`` reports and ``alpha``."""
    if dense.get("samples") != pruned.get("samples") or dense.get("seed") != pruned.get("seed"):
        raise ValueError("the two evaluations were made on different samples; α compares like with like")
    out = {}
    for label, eps in (("clean", 0.0), ("attack", float(epsilon))):
        if label == "attack" and eps <= 0:
            continue
        d, p = _at(dense, eps), _at(pruned, eps)
        out[label] = {"epsilon": eps, "dense": d, "pruned": p, "alpha": intensification(d["balance"], p["balance"])}
    return out


def record_distortion(record, epsilon: float | None = None) -> dict:
    """:func:`distortion_from_results` for a run record: its teacher against its pruned model, at
    the run's epsilon unless ``epsilon`` (one of the record's evaluation epsilons) is given."""
    eps = record.config["epsilon"] if epsilon is None else epsilon
    return distortion_from_results(record.teacher["robustness"], record.robustness, eps)


def recall_distortion(dense: nn.Module, pruned: nn.Module, data: ArrayDataset, epsilon: float = 0.0,
                      steps: int = 10, seed: int = 0) -> dict:
    """Balances of ``dense`` and ``pruned`` on ``data`` and ``α``, clean and (when ``epsilon > 0``)
    under foolbox L-inf PGD of that size, both models on the same samples and random starts."""
    from ..robustness.evaluation import evaluate_pair

    pair = evaluate_pair(dense, pruned, data, "pgd", sorted({0.0, float(epsilon)}), steps=steps, seed=seed,
                         checks=False, warn=False)
    return distortion_from_results(pair["teacher"], pair["pruned"], epsilon)


def distortion_sweep(config, methods=("deadwooding", "magnitude", "undecayed", "random"),
                     sparsities=(0.5, 0.8, 0.9, 0.95), *, on_event=None, cache_dir=None) -> list[dict]:
    """``α`` clean and under attack (at ``config.epsilon``) for every method at every sparsity,
    read from the runs' records (runs come from ``cache_dir``, default the engine's cache, when
    present; one 'epoch' event of stage 'distortion' per run read). One row per run with
    ``alpha_clean``, ``accuracy_clean``, ``dense_accuracy_clean`` and the same ``_attack`` keys
    when the epsilon is above 0."""
    from ..config import with_updates
    from ..pipeline import run

    rows = []
    total = len(methods) * len(sparsities)
    emit(on_event, "start", "distortion", 0, total)
    for m in methods:
        for s in sparsities:
            record = run(with_updates(config, method=m, sparsity=s), on_event=on_event, cache_dir=cache_dir).record
            row = {"method": m, "sparsity": s, "epsilon": float(config.epsilon)}
            for label, part in record_distortion(record).items():
                row[f"alpha_{label}"] = part["alpha"]
                row[f"accuracy_{label}"] = part["pruned"]["accuracy"]
                row[f"dense_accuracy_{label}"] = part["dense"]["accuracy"]
            rows.append(row)
            emit(on_event, "epoch", "distortion", len(rows), total)
    emit(on_event, "end", "distortion", total, total)
    return rows
