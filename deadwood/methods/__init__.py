"""Pruning methods: one file each, one signature, one registry (:mod:`.registry`).

A method is a function ``prune(ctx: PruneContext) -> PruneResult`` registered with its facts
(configuration section, own Stage 1, whether the cut options apply, colour). Adding a method is
one file in this folder plus its import line below; the order of the imports is the order users see.
"""
from .registry import (Method, PruneContext, PruneResult, cut_methods, get_method, method_colours,  # noqa: F401
                       method_names, method_sections, methods, register)
from .deadwooding import method as deadwooding  # noqa: E402,F401
from . import magnitude, magnitude_layerwise, undecayed, random, hydra, hydra_adam, gmp, harp, dense
