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
