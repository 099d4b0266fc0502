"""The benchmark's attacks beyond the run record's PGD (AutoAttack), on the runs and teachers of a grid.

A run record holds PGD at each of its epsilons; ``deadwood bench --attack pgd autoattack`` adds AutoAttack on
``attack_samples`` test images of each run and each seed's teacher, with PGD-10 on the same images
beside it. This module holds what such an evaluation is: its settings (what it is cached under), the
evaluation itself (:func:`evaluate_attack`, run by the driver or by an executor's worker), its cache
in ``attacks.json`` (one entry per run and teacher, written atomically, so a resumed benchmark looks
it up), and the columns it adds to a benchmark row (:func:`with_attacks`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..storage.files import atomic_write_json

BENCH_ATTACKS = ("pgd", "autoattack")  # robust-accuracy columns: pgd is the run record's own
ATTACKS_FILE = "attacks.json"  # cached evaluations beyond the record's PGD, one per run and teacher


@dataclass(frozen=True)
class Evaluation:
    """One attack beyond the record's PGD, as a job for an executor's worker: of a finished run's pruned
    model (``target`` 'model') or of its teacher ('dense'), filed in ``attacks.json`` under ``name``
    with ``settings``."""

    name: str
    target: str
    attack: str
    epsilon: float
    samples: int
    seed: int
    settings: dict = field(hash=False, compare=False)


def attack_settings(attack: str, epsilon: float, samples: int, seed: int, model_key: str) -> dict:
    """What an evaluation of ``attack`` is cached under (beside its name): the attack, ε, the test
    samples and their seed, the attack package's version, and the key of the model attacked."""
    from .. import robustness

    return {"attack": attack, "epsilon": float(epsilon), "samples": samples, "seed": seed,
            "package": robustness.package_info(robustness.ATTACK_INFO[attack]["package"]), "model": model_key}



def evaluate_attack(model, test, attack: str, epsilon: float, samples: int, seed: int, settings: dict,
                    on_event=None) -> dict:
    """Robust accuracy of ``model`` under ``attack`` at ``epsilon`` on ``samples`` test images
    (chosen by ``seed``), with PGD-10 on the same images (the ``pgd-vs-autoattack`` check): the
    compact entry that ``attacks.json`` keeps. The driver runs it (:func:`extra_evaluation`), and
    so does an executor's worker (:func:`deadwood.bench.tasks.evaluate_entry`)."""
    from .. import robustness

    r = robustness.evaluate(model, test, attack, [0.0, float(epsilon)], samples=samples, seed=seed,
                            on_event=on_event, warn=False, stage=f"eval-{attack}")
    pgd = next((c for c in r["checks"] if c["name"] == "pgd-vs-autoattack"), None)
    return {"settings": settings, "robust_accuracy": r["accuracy"][-1], "clean_accuracy": r["clean_accuracy"],
            "pgd_accuracy": pgd["pgd_accuracy"][-1] if pgd else None, "samples": r["samples"],
            "seconds": r["seconds"], "warnings": r["warnings"], "package": r["package"],
            "accuracy_after": ({k: v[-1] for k, v in r["autoattack"]["accuracy_after"].items()}
                               if r.get("autoattack") else None)}


def stored_evaluation(cache: Path, key: str, settings: dict) -> Optional[dict]:
    """The evaluation filed in the JSON file ``cache`` under ``key`` with these ``settings``, or None."""
    hit = (json.loads(cache.read_text()) if cache.is_file() else {}).get(key)
    return hit if hit and hit.get("settings") == settings else None


def store_evaluation(cache: Path, key: str, entry: dict) -> None:
    """File ``entry`` under ``key`` in ``cache``, written atomically: an interruption leaves the file as it was."""
    stored = json.loads(cache.read_text()) if cache.is_file() else {}
    atomic_write_json(cache, {**stored, key: entry})


def extra_evaluation(model, test, attack: str, epsilon: float, samples: int, seed: int, cache: Path, key: str,
                     on_event=None, model_key: str = "") -> dict:
    """:func:`evaluate_attack`, cached in the JSON file ``cache`` under ``key`` and the evaluation's
    settings (:func:`attack_settings`), so a resumed benchmark looks it up."""
    settings = attack_settings(attack, epsilon, samples, seed, model_key)
    hit = stored_evaluation(cache, key, settings)
    if hit is not None:
        return hit
    entry = evaluate_attack(model, test, attack, epsilon, samples, seed, settings, on_event=on_event)
    store_evaluation(cache, key, entry)
    return entry


def with_attacks(row: dict, extra: dict, teacher: dict) -> dict:
    """``row`` with each extra attack's columns: ``<attack>_accuracy``, ``<attack>_pgd_accuracy``
    (PGD-10 on the same samples), ``teacher_<attack>_accuracy``; its warnings added to the row's."""
    row = dict(row)
    for attack, e in extra.items():
        row[f"{attack}_accuracy"] = e["robust_accuracy"]
        row[f"{attack}_pgd_accuracy"] = e["pgd_accuracy"]
        row[f"{attack}_samples"] = e["samples"]
        row[f"{attack}_seconds"] = e["seconds"]
        row[f"teacher_{attack}_accuracy"] = teacher[attack]["robust_accuracy"]
        row["warnings"] = row["warnings"] + [f"{attack}: {w}" for w in e["warnings"]]
    return row
