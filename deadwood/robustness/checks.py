"""Carlini's sanity checks (Carlini et al. 2019, "On evaluating adversarial robustness"), recorded
with every evaluation and raised as :class:`RobustnessWarning` when they fail. A failure means the attack
missed what a working attack finds, most often because the model masks its gradients (sometimes
because the attack has too few steps), so the robust accuracy it reports is overestimated:

- ``epsilon-zero``: accuracy at ε = 0 equals the clean accuracy, exactly;
- ``monotone``: accuracy never rises with ε (by more than :data:`TOLERANCE`);
- ``stronger-than-fgsm``: a multi-step attack is not weaker than FGSM (FGM for L2) at the same ε;
- ``large-epsilon``: at ε = :func:`.specs.large_epsilon` (L-inf 0.5: every input can reach the centre of
  the box, so no classifier can be robust) accuracy falls to chance + :data:`CHANCE_MARGIN`;
- ``pgd-vs-autoattack`` (AutoAttack results only): PGD-10 (pgd or pgd-l2, as ``evaluate`` runs it
  by default, same samples, seed and batches) leaves no more than :data:`PGD_GAP` (or one sample,
  whichever is larger) above AutoAttack's robust accuracy at any ε. A larger gap means the PGD
  numbers reported elsewhere overestimate robustness: PGD has too few steps, or the model masks
  its gradients (AutoAttack's targeted DLR loss is scale-free and Square uses no gradient at all).
  The PGD accuracies are recorded in the check (``pgd_accuracy``).

Beside them, :func:`chance_warning` says when a model's clean accuracy is no better than guessing
(the run record's ``warnings``): then every robustness number of it means nothing either.
"""
from __future__ import annotations

import math
from typing import Optional

from .specs import CHANCE_MARGIN, PGD_GAP, SPECS, TOLERANCE


# A clean accuracy is "at chance" when it is no more than CHANCE_SIGMAS binomial standard errors of a
# guesser on the evaluated samples above 1/C, and never less than CHANCE_FLOOR: on 300 test images of 3
# classes a guesser scores 33 % ± 2.7 points (one standard error), so 2 points alone would miss most
# guessers there; on 10,000 images the floor keeps the band at a visible 2 points.
CHANCE_SIGMAS = 2.0
CHANCE_FLOOR = 0.02


def chance_margin(classes: int, samples: int) -> float:
    """How far above 1/``classes`` a clean accuracy on ``samples`` images still counts as chance."""
    p = 1.0 / classes
    return max(CHANCE_FLOOR, CHANCE_SIGMAS * math.sqrt(p * (1 - p) / max(samples, 1)))


def chance_warning(who: str, accuracy: Optional[float], classes: int, samples: int) -> Optional[str]:
    """A one-line warning when ``accuracy`` (``who``'s clean accuracy on ``samples`` images of
    ``classes`` classes) is within :func:`chance_margin` of 1/C or below it; None otherwise."""
    if accuracy is None or classes < 2:
        return None
    chance, margin = 1.0 / classes, chance_margin(classes, samples)
    if accuracy > chance + margin:
        return None
    level = "below" if accuracy < chance - margin else "at"
    return (f"{who}'s clean accuracy {accuracy:.1%} is {level} chance level (1/{classes} = {chance:.1%}, within "
            f"{margin * 100:.1f} points on {samples} test samples): it does no better than guessing, "
            "so its other numbers mean nothing (train longer, or check the data)")


class RobustnessWarning(UserWarning):
    """A robustness sanity check failed: the numbers may reflect gradient masking, not robustness."""


def run_checks(result: dict, num_classes: int, big: float, big_acc: Optional[float], reference, ref_acc,
               agrees: bool = True, pgd: Optional[str] = None, pgd_acc: Optional[list] = None) -> list[dict]:
    """The checks of one ``evaluate`` result, in order (module docstring): ``big_acc`` is the accuracy
    at the large epsilon ``big`` (None: not measured), ``ref_acc`` the reference single-step attack's
    and ``pgd_acc`` PGD-10's at each positive epsilon, ``agrees`` whether epsilon 0 and the clean pass
    were right on the same samples."""
    eps, acc, name = result["epsilons"], result["accuracy"], result["attack"]
    tol = max(TOLERANCE, 1.0 / result["samples"])  # forgive one sample on small evaluations
    out = []

    same = acc[0] == result["clean_accuracy"] and agrees
    out.append({"name": "epsilon-zero", "passed": same,
                "message": "accuracy at epsilon 0 equals the clean accuracy" if same else
                f"accuracy at epsilon 0 ({acc[0]:.4f}, sample by sample) differs from the clean accuracy "
                f"({result['clean_accuracy']:.4f}): the model's predictions are not deterministic"})

    rises = [(eps[i], eps[i + 1], acc[i], acc[i + 1]) for i in range(len(eps) - 1) if acc[i + 1] > acc[i] + tol]
    out.append({"name": "monotone", "passed": not rises,
                "message": "accuracy never rises with epsilon" if not rises else
                "; ".join(f"{name} accuracy rises from {a:.4f} at epsilon {e0:g} to {b:.4f} at {e1:g}"
                          for e0, e1, a, b in rises) + ": a larger budget cannot help the model, so the attack "
                "is unreliable here (too few steps, or masked gradients) and robustness is overestimated"})

    if reference is None:
        out.append({"name": "stronger-than-fgsm", "passed": None,
                    "message": f"not applicable to {name}"})
    else:
        pos = [i for i, e in enumerate(eps) if e > 0]
        weaker = [(eps[i], acc[i], r) for i, r in zip(pos, ref_acc) if acc[i] > r + tol]
        label = reference.name.upper()
        out.append({"name": "stronger-than-fgsm", "passed": not weaker, "reference": reference.name,
                    "reference_accuracy": [acc[0]] + ref_acc,
                    "message": f"{name} is at least as strong as {label} at every epsilon" if not weaker else
                    "; ".join(f"{name} leaves {a:.4f} accuracy at epsilon {e:g} but {label} only {r:.4f}"
                              for e, a, r in weaker) + ": a multi-step attack should not be weaker, so it has not "
                    "converged (try more steps) or gradients are masked, and robustness is overestimated"})

    chance = 1.0 / num_classes
    if big_acc is None:
        out.append({"name": "large-epsilon", "passed": None, "epsilon": big, "accuracy": None, "chance": chance,
                    "message": "not applicable: only epsilon 0 was asked for, so no attack ran"})
    else:
        ok = big_acc <= chance + CHANCE_MARGIN
        out.append({"name": "large-epsilon", "passed": ok, "epsilon": big, "accuracy": big_acc, "chance": chance,
                    "message": f"at epsilon {big:g} accuracy falls to {big_acc:.4f} (chance {chance:.2f})" if ok else
                    f"at epsilon {big:g}, where no classifier can be robust, {name} still leaves {big_acc:.4f} "
                    f"accuracy (chance {chance:.2f}): gradients are probably masked"})

    if pgd is not None:
        out.append(pgd_vs_autoattack(eps, acc, [acc[0]] + pgd_acc, result["samples"], pgd))
    return out


def pgd_vs_autoattack(epsilons, autoattack_accuracy, pgd_accuracy, samples: int, pgd: str = "pgd") -> dict:
    """The ``pgd-vs-autoattack`` check: PGD's robust accuracy (on the same samples) is not above
    AutoAttack's by more than :data:`PGD_GAP` (or one sample) at any epsilon."""
    gap = max(PGD_GAP, 1.0 / samples)
    if not any(e > 0 for e in epsilons):
        return {"name": "pgd-vs-autoattack", "passed": None, "pgd": pgd, "pgd_accuracy": list(pgd_accuracy),
                "tolerance": gap, "message": "not applicable: no epsilon > 0 was asked for"}
    over = [(e, p, a) for e, a, p in zip(epsilons, autoattack_accuracy, pgd_accuracy) if e > 0 and p > a + gap]
    worst = max((p - a for e, a, p in zip(epsilons, autoattack_accuracy, pgd_accuracy) if e > 0), default=0.0)
    label = pgd.upper()
    return {"name": "pgd-vs-autoattack", "passed": not over, "pgd": pgd, "pgd_steps": SPECS[pgd].default_steps,
            "pgd_accuracy": list(pgd_accuracy), "tolerance": gap, "largest_gap": worst,
            "message": f"{label}-{SPECS[pgd].default_steps} is within {gap:.2f} of AutoAttack at every epsilon "
            f"(largest gap {worst:+.4f})" if not over else
            "; ".join(f"{label}-{SPECS[pgd].default_steps} leaves {p:.4f} accuracy at epsilon {e:g} but "
                      f"AutoAttack only {a:.4f}" for e, p, a in over) +
            f": more than {gap:.2f} apart, so PGD overestimates robustness here (too few steps, or masked "
            "gradients)"}
