"""Deadwood: robust global pruning (Deadwooding) and its baselines, in plain PyTorch.

The public API::

    from deadwood import RunConfig, run, load_run, load_dataset, build_model
    result = run(RunConfig(dataset="digits", model="mlp", method="deadwooding", sparsity=0.95))
    result.record.clean_accuracy, result.model

    # your own trained network and data (deadwood.prune_api)
    pruned = deadwood.prune(my_model, train_set, test_set, sparsity=0.95, epsilon=0.1)
    pruned.model, pruned.record
"""
from .version import __version__  # noqa: E402,F401

from .config import (CutConfig, DeadwoodingConfig, EvalConfig, FinetuneConfig, GmpConfig, HarpConfig, HydraAdamConfig, HydraConfig,  # noqa: E402
                     LayersConfig, RunConfig, TeacherConfig, resolve, with_updates)
from .data.datasets import dataset_info, dataset_names, load_dataset  # noqa: E402
from .errors import (ConfigError, DatasetFileError, DatasetNotFound, DeadwoodError, RunFileError,  # noqa: E402
                     RunStopped)
from .events import Event  # noqa: E402
from .pruning.masks import Mask  # noqa: E402
from .methods import get_method, method_names  # noqa: E402
from .models.registry import build_model, model_for, model_names  # noqa: E402
from .pipeline import Cache, run  # noqa: E402
from .prune_api import Pruned, prune  # noqa: E402
from .storage.record import LoadedRun, RunRecord, load_run  # noqa: E402

__all__ = [
    "RunConfig", "TeacherConfig", "DeadwoodingConfig", "CutConfig", "HydraConfig", "HydraAdamConfig", "GmpConfig", "HarpConfig", "FinetuneConfig", "EvalConfig", "LayersConfig",
    "with_updates", "resolve", "load_dataset", "dataset_info", "dataset_names", "build_model", "model_for", "model_names",
    "method_names", "get_method", "run", "prune", "Pruned", "Cache", "load_run", "LoadedRun", "RunRecord", "Mask", "Event",
    "DeadwoodError", "ConfigError", "DatasetNotFound", "DatasetFileError", "RunFileError", "RunStopped",
]
