"""Every hyperparameter, as frozen dataclasses with validation, and the check a run starts with.

The CLI, the app and the notebooks build a :class:`RunConfig`; the engine only
ever reads it. Change one with ``dataclasses.replace`` (or :func:`with_updates`
for dotted names such as ``"deadwooding.dual_step"``).

Building a configuration checks its values only: types, ranges, choices, and names the registries
know. It reads no file and builds no network, so it is cheap and can be built for data that is not
there (yet). :func:`resolve` is the one place that looks at what the values point to (the image
folder, the network on that data, the teacher checkpoint), and everything that starts a run calls it
before any work.

- :mod:`.run_config`: :class:`RunConfig` (one run, its cache keys), :func:`resolve`, :func:`with_updates`;
- :mod:`.sections`: its sections, one frozen dataclass per stage and per method, and ``SECTIONS``;
- :mod:`.validation`: the value checks the sections share.

May import: ``deadwood.errors``, ``deadwood.fingerprint``, ``deadwood.device``, ``deadwood.data``,
``deadwood.models``, ``deadwood.methods`` (the registry, the budget, the dual update rules).
"""
from .run_config import RunConfig, resolve, with_updates
from .sections import (ALLOCATIONS, GRANULARITIES, HARP_LOSSES, HYDRA_SCHEDULES, SECTIONS, CutConfig,
                       DeadwoodingConfig, EvalConfig, FinetuneConfig, GmpConfig, HarpConfig, HydraAdamConfig,
                       HydraConfig, LayersConfig, TeacherConfig)

__all__ = ["RunConfig", "resolve", "with_updates", "SECTIONS", "TeacherConfig", "DeadwoodingConfig", "CutConfig",
           "HydraConfig", "HydraAdamConfig", "GmpConfig", "HarpConfig", "FinetuneConfig", "EvalConfig",
           "LayersConfig", "GRANULARITIES", "HYDRA_SCHEDULES", "HARP_LOSSES", "ALLOCATIONS"]
