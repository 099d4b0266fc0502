"""A finished run's directory without training: a freshly initialised model, cut, written as a run writes it.

For tests of what is done with a finished run (deploy, export), where the weights' values do not
matter, only that the files are the ones a run leaves."""
from pathlib import Path

import torch

import deadwood
from deadwood.pruning.bcr import bcr_cut
from deadwood.pruning.masks import magnitudes, random_cut
from deadwood.storage.record import RunRecord, versions, write_run
from deadwood.pruning.masks import sparsity_of


def fake_run(path: Path, config: deadwood.RunConfig) -> Path:
    """``config``'s model at ``config.sparsity``, cut as ``config.cut.granularity`` says, written to ``path``."""
    config = config.validate()
    model = deadwood.build_model(config.model, deadwood.dataset_info(config.dataset), seed=config.seed).eval()
    dense = deadwood.build_model(config.model, deadwood.dataset_info(config.dataset), seed=config.seed).eval()
    if config.cut.granularity == "bcr":
        mask, _ = bcr_cut(magnitudes(model), config.sparsity, (config.cut.block_rows, config.cut.block_cols))
    else:
        mask, _ = random_cut(magnitudes(model), config.sparsity, torch.Generator().manual_seed(config.seed))
    mask.apply(model)
    layer_sparsity, layer_sizes, global_sparsity = sparsity_of(model)
    record = RunRecord(config=config.to_dict(), versions=versions(), layer_sparsity=layer_sparsity,
                       layer_sizes=layer_sizes, global_sparsity=global_sparsity, key=config.key())
    return write_run(Path(path), record, model, dense)


def many_layer_run(cache: Path, layers: int = 52) -> RunRecord:
    """The default configuration's run written into the cache ``cache`` as if computed: a synthetic
    history of ``layers`` layer constraints (as many as mobilenet_v3_small by default), both models at
    chance (the record's warnings say so), the MLP's weights as its checkpoints. For tests of how a
    page draws a large run, without training one."""
    from deadwood.fingerprint import code_fingerprint
    from deadwood.pipeline import chance_warnings
    from deadwood.storage.cache import Cache

    names = [f"features.{i}.block.0.weight" for i in range(layers)]
    config = deadwood.RunConfig()
    history = []
    for e in range(1, 9):
        lam = {f"rep:{n}": 0.002 * i * e for i, n in enumerate(names)}
        lam.update(kd=0.05 * e, rob=0.4 * e)
        history.append({"phase": "dual", "epoch": e, "loss": 1.0, "accuracy": 0.1, "lambdas": lam,
                        "violations": {k: 0.2 - 0.03 * e for k in lam},
                        "dead_fraction": {n: min(1.0, 0.005 * i + 0.1 * e) for i, n in enumerate(names)}})
    history += [{"phase": "finetune", "epoch": e, "loss": 1.0, "accuracy": 0.1} for e in (1, 2)]
    curve = {"attack": "pgd", "steps": 10, "samples": 360, "epsilons": [0.0, 0.05, 0.1, 0.2],
             "accuracy": [0.1, 0.1, 0.1, 0.1], "clean_accuracy": 0.1, "classes": [str(c) for c in range(10)],
             "warnings": []}
    record = RunRecord(
        config={**config.to_dict(), "device": "cpu"}, versions=versions(), history=history,
        layer_sparsity={n: 0.9 + 0.0015 * i for i, n in enumerate(names)},
        layer_sizes={n: 1000 * (i + 1) for i, n in enumerate(names)}, global_sparsity=0.95,
        one_shot_accuracy=0.1, clean_accuracy=0.1, robustness=curve,
        timings={"data": 0.1, "teacher": 0.1, "prune": 1.0, "finetune": 1.0, "eval": 1.0, "total": 3.2},
        teacher={"clean_accuracy": 0.1, "robustness": curve, "key": "t", "cached": True},
        prune_info={"constraints": list(history[0]["lambdas"])}, key=config.key(), code=code_fingerprint(),
        warnings=chance_warnings(curve, curve))
    model = deadwood.build_model(config.model, deadwood.dataset_info(config.dataset))
    write_run(Cache(cache).run_dir(config), record, model, model)
    return record
