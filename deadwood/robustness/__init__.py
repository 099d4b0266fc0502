"""Robustness: every reported robustness number and the attacks that make it, clean accuracy, and
the differentiable training-time attacks.

- :mod:`.specs`: the evaluation attacks as data (``ATTACK_INFO``, ``EVAL_ATTACKS``), the checks'
  constants, the validation of epsilons and samples;
- :mod:`.kinds`: one class per attack kind (fixed budget, minimum norm, AutoAttack) under one base
  whose final call does the shared work; :mod:`.evaluation`: the public calls built on them;
- :mod:`.foolbox_backend` and :mod:`.autoattack`: the only modules that import foolbox and
  torchattacks (on first use: neither is imported when the engine or the CLI starts);
- :mod:`.attacking`: eval mode, frozen parameters and seeded random starts while attacked;
- :mod:`.checks`: Carlini's sanity checks; :mod:`.curves`: security curves;
- :mod:`.accuracy`: clean predictions and accuracy;
- :mod:`.training`: FGSM and PGD in plain torch, and ``perturb``, which every training stage
  imports from there (training needs an attack every mini-batch).

May import: ``deadwood.data``, ``deadwood.device``, ``deadwood.errors``, ``deadwood.events``.

Public API, re-exported here (locked: the app, the notebooks and the benchmark build on it; the
signatures are checked against the code by tests/test_robustness.py)::

    EVAL_ATTACKS   names accepted below, each an L-inf or L2 attack on inputs in [0, 1]:
                   fgsm, pgd, pgd-l2, autoattack, autoattack-l2 (fixed budget) and deepfool,
                   deepfool-l2, fmn (minimum norm)
    ATTACK_INFO    name -> {"norm", "minimum_norm", "default_steps", "about", "package"} (for menus and labels)
    FORMAT, DEFAULT_EPSILONS, TOLERANCE, CHANCE_MARGIN, PGD_GAP, AUTOATTACK_COMPONENTS
    evaluate(model, data, attack='pgd', epsilons=(0.0, 0.05, 0.1, 0.2), *, steps=None, step_size=None,
             samples=None, seed=0, batch_size=512, device=None, checks=True, on_event=None, warn=True,
             stage='eval') -> dict
        robust accuracy at every epsilon, per-class recall, the checks (fields: :mod:`.evaluation`)
    evaluate_pair(teacher, pruned, data, attack='pgd', epsilons=(0.0, 0.05, 0.1, 0.2), **kwargs) -> dict
        {"teacher": evaluate(...), "pruned": evaluate(...)} on the same samples and seed
    adversarial_examples(model, x, y, attack='pgd', epsilon=0.1, *, steps=None, step_size=None, seed=0,
                         device=None) -> dict
        one batch's adversarials, for drawing
    security_curve(model, data, *, attack='fmn', steps=None, samples=None, seed=0, batch_size=512,
                   device=None, on_event=None) -> dict
    curve_at(norms, epsilons) -> list[float]
    import_backend(attack='pgd') -> None
        imports the library behind ``attack`` now (foolbox or torchattacks), not at its first use
    check_epsilons(epsilons) -> list[float]
        sorted, unique, starting at 0
    per_class_recall(correct, labels, num_classes) -> list
    pgd_vs_autoattack(epsilons, autoattack_accuracy, pgd_accuracy, samples, pgd='pgd') -> dict
        the check, for two results on the same samples
    package_info(name) -> dict
        {"name", "version"} of the library behind an attack
    RobustnessWarning                   the category of the sanity-check warnings
    ModelOutputError (deadwood.errors)  raised when the model's logits are NaN or infinite
"""
from .checks import RobustnessWarning, pgd_vs_autoattack  # noqa: F401
from .curves import curve_at, security_curve  # noqa: F401
from .evaluation import adversarial_examples, evaluate, evaluate_pair, import_backend  # noqa: F401
from .kinds import per_class_recall  # noqa: F401
from .specs import (ATTACK_INFO, AUTOATTACK_COMPONENTS, CHANCE_MARGIN, DEFAULT_EPSILONS, EVAL_ATTACKS,  # noqa: F401
                    FORMAT, PGD_GAP, TOLERANCE, check_epsilons, package_info)
