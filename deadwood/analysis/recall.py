"""Recall distortion (Good et al., "Recall Distortion in Neural Network Pruning and the
Undecayed Pruning Algorithm", NeurIPS 2022).

Pruning rarely costs every class the same. For class ``c`` the normalised recall
balance is

    B_c = (recall_c − accuracy) / accuracy,

and the intensification statistic of a pruned model against its dense parent is

    α = Σ_c B_c^dense · B_c^pruned / Σ_c (B_c^dense)²,

the least-squares slope of the pruned balances on the dense ones: ``α > 1`` means
pruning intensified the dense model's imbalance (strong classes got relatively
stronger, weak ones weaker), ``α < 1`` that it attenuated it. "Under attack" uses
robust recall and robust accuracy: each model is attacked by L-inf PGD (plain torch,
``deadwood.robustness.pgd``) on the same test samples, and a sample counts as recalled
when the attack on that model fails.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data import ArrayDataset, batches


def per_class_recall(pred, y, num_classes: int) -> np.ndarray:
    """``recall_c`` = correct predictions of class ``c`` / samples of class ``c`` (nan if none)."""
    pred, y = np.asarray(torch.as_tensor(pred).cpu()), np.asarray(torch.as_tensor(y).cpu())
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        sel = y == c
        if sel.any():
            out[c] = float((pred[sel] == c).mean())
    return out


def recall_balance(recall, accuracy: float) -> np.ndarray:
    """``B_c = (recall_c − accuracy) / accuracy`` (nan everywhere when accuracy is 0)."""
    recall = np.asarray(recall, dtype=float)
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


def _predictions(model: nn.Module, data: ArrayDataset, epsilon: float, steps: int, seed: int,
                 batch_size: int = 512) -> torch.Tensor:
    from ..robustness import pgd

    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for x, y in batches(data, batch_size):
        xa = pgd(model, x, y, epsilon, steps, generator=gen) if epsilon > 0 else x
        with torch.no_grad():
            out.append(model(xa).argmax(1))
    model.train(was)
    return torch.cat(out)


def recall_report(model: nn.Module, data: ArrayDataset, epsilon: float = 0.0, steps: int = 10,
                  seed: int = 0) -> dict:
    """Accuracy, per-class recall and balances of one model, clean (``epsilon`` 0) or under PGD."""
    pred = _predictions(model, data, epsilon, steps, seed)
    acc = int((pred == data.y).sum()) / len(data)
    recall = per_class_recall(pred, data.y, data.info.num_classes)
    return {"epsilon": float(epsilon), "accuracy": acc, "recall": recall.tolist(),
            "balance": recall_balance(recall, acc).tolist()}


def recall_distortion(dense: nn.Module, pruned: nn.Module, data: ArrayDataset, epsilon: float = 0.0,
                      steps: int = 10, seed: int = 0) -> dict:
    """Recall balances of ``dense`` and ``pruned`` on ``data`` and the intensification ``α``,
    clean and (when ``epsilon > 0``) under an L-inf PGD attack of that size."""
    out = {}
    for label, eps in (("clean", 0.0), ("attack", float(epsilon))):
        if label == "attack" and eps <= 0:
            continue
        d, p = recall_report(dense, data, eps, steps, seed), recall_report(pruned, data, eps, steps, seed)
        out[label] = {"epsilon": eps, "dense": d, "pruned": p, "alpha": intensification(d["balance"], p["balance"])}
    return out


def distortion_sweep(config, methods=("deadwooding", "magnitude", "undecayed", "random"),
                     sparsities=(0.5, 0.8, 0.9, 0.95), *, epsilon: float | None = None, on_event=None) -> list[dict]:
    """``α`` clean and under attack for every method at every sparsity (``config``'s other
    settings; runs come from the cache when present). ``epsilon`` defaults to the run's.
    Test samples and PGD steps follow ``config.evaluation``. One row per run with
    ``alpha_clean``, ``accuracy_clean``, ``dense_accuracy_clean`` and the same ``_attack``
    keys when ``epsilon > 0``."""
    from ..config import with_updates
    from ..pipeline import load_data, resolve_device, run

    device = resolve_device(config.device)
    _, test = load_data(config, device)
    data = test.subset(config.evaluation.samples, config.seed)
    eps = config.epsilon if epsilon is None else epsilon
    steps, seed = config.evaluation.steps, config.seed
    settings = [("clean", 0.0)] + ([("attack", float(eps))] if eps > 0 else [])
    rows, dense = [], None
    for m in methods:
        for s in sparsities:
            loaded = run(with_updates(config, method=m, sparsity=s), on_event=on_event)
            if dense is None:  # every run prunes the same teacher: report it once
                model = loaded.dense().to(device)
                dense = {label: recall_report(model, data, e, steps, seed) for label, e in settings}
            pruned = loaded.model.to(device)
            row = {"method": m, "sparsity": s, "epsilon": float(eps)}
            for label, e in settings:
                p = recall_report(pruned, data, e, steps, seed)
                row[f"alpha_{label}"] = intensification(dense[label]["balance"], p["balance"])
                row[f"accuracy_{label}"] = p["accuracy"]
                row[f"dense_accuracy_{label}"] = dense[label]["accuracy"]
            rows.append(row)
    return rows
