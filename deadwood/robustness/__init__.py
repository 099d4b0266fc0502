"""Robustness: every reported robustness number (foolbox and AutoAttack, wrapped here and nowhere
else, with Carlini's sanity checks and the curves), clean accuracy, and the differentiable
training-time attacks (:mod:`.training`) that every training stage imports from here.

May import: ``deadwood.data``, ``deadwood.device``, ``deadwood.errors``, ``deadwood.events``.
The public API (see :mod:`.evaluation`) is re-exported here.
"""
from .evaluation import (ATTACK_INFO, AUTOATTACK_COMPONENTS, CHANCE_MARGIN, DEFAULT_EPSILONS,  # noqa: F401
                         EVAL_ATTACKS, FORMAT, PGD_GAP, TOLERANCE, RobustnessWarning, adversarial_examples,
                         check_epsilons, curve_at, evaluate, evaluate_pair, package_info, per_class_recall,
                         pgd_vs_autoattack, security_curve)
