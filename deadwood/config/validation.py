"""The value checks every configuration section shares, each failing with a message that names the field.

They check values only (a type, a range, a choice): what a value points to is
:func:`deadwood.config.resolve`'s business.
"""
from __future__ import annotations

import math

from ..errors import ConfigError


def positive(name: str, value, allow_zero: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def below_one(name: str, value, why: str = ""):
    """A fraction in [0, 1): a momentum, a lowest keep rate."""
    if not (number(value) and 0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1){why}, got {value!r}")


def whole(name: str, value):
    """A whole number >= 1 (not a bool)."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")


def own_epochs(name: str, value, why: str = "or None: the solve's epochs"):
    """A method's own-stage epochs: None (the solve's, under the budget protocol) or a whole number >= 1."""
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1 ({why}), got {value!r}")


def choice(name: str, value, choices):
    if value not in choices:
        raise ConfigError(f"unknown {name} '{value}'; choose one of: {', '.join(choices)}")

