"""The stored solve keeps every epoch's weights (float16) for the replay, up to a size limit; an entry
stored without them still serves every run."""
import json

import pytest
import torch

from deadwood import run, with_updates
from deadwood.methods.deadwooding import method
from deadwood.pruning.masks import prunable
from deadwood.storage.cache import Cache
from deadwood.storage.solves import SNAPSHOT_FILE, SUMMARY_FILE
from deadwood.models.registry import build_model
from deadwood.data.datasets import dataset_info
from conftest import tiny


def _shapes(config) -> dict:
    model = build_model(config.model, dataset_info(config.dataset))
    return {n: p.shape for n, p in prunable(model).items()}


def test_a_small_model_stores_one_float16_snapshot_per_solve_epoch(tmp_path):
    config = tiny(method="deadwooding", seed=51)
    loaded = run(config, cache_dir=tmp_path)
    store = Cache(tmp_path).solves
    snaps = store.snapshots(config)
    epochs = config.deadwooding.epochs
    assert snaps is not None and len(snaps) == epochs
    shapes = _shapes(config)
    for snap in snaps:
        assert list(snap) == list(shapes)  # the model's layer order
        assert all(snap[n].dtype == torch.float16 and snap[n].shape == shapes[n] for n in shapes)
    note = store.summary(config)["snapshots"]
    assert note["epochs"] == epochs and note["weights"] == sum(s.numel() for s in shapes.values())
    # the last snapshot is the solved student, to float16's precision; the epochs differ
    state, _ = store.load(config)
    for n in shapes:
        assert torch.allclose(snaps[-1][n].float(), state[n], rtol=1e-3, atol=1e-4)
    assert not torch.equal(snaps[0][next(iter(shapes))], snaps[-1][next(iter(shapes))])
    # exactly what the file costs: 2 bytes a weight and epoch, plus safetensors' header
    data = epochs * note["weights"] * 2
    size = (store.folder(config) / SNAPSHOT_FILE).stat().st_size
    assert data < size < data + 200 * epochs * len(shapes)
    assert loaded.record.prune_info["solve_cached"] is False


def test_a_model_above_the_limit_stores_no_snapshots(tmp_path, monkeypatch):
    config = tiny(method="deadwooding", seed=52)
    weights = sum(s.numel() for s in _shapes(config).values())
    monkeypatch.setattr(method, "SNAPSHOT_LIMIT", weights - 1)
    run(config, cache_dir=tmp_path)
    store = Cache(tmp_path).solves
    assert store.has(config) and store.snapshots(config) is None
    assert not (store.folder(config) / SNAPSHOT_FILE).exists()
    note = store.summary(config)["snapshots"]
    assert note["epochs"] == 0 and note["limit"] == weights - 1 and note["weights"] == weights
    # the quantiles the replay falls back on are there for every epoch
    assert all(h.get("magnitude_quantiles") for h in store.summary(config)["history"])


def test_an_entry_stored_before_snapshots_still_serves_every_run(tmp_path):
    config = tiny(method="deadwooding", seed=53)
    run(config, cache_dir=tmp_path)
    store = Cache(tmp_path).solves
    folder = store.folder(config)
    (folder / SNAPSHOT_FILE).unlink()  # as an entry written before solves kept them
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    del summary["snapshots"]
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    assert store.snapshots(config) is None and store.has(config)
    other = run(with_updates(config, sparsity=0.95), cache_dir=tmp_path)
    assert other.record.prune_info["solve_cached"] is True
    assert other.record.global_sparsity == pytest.approx(0.95, abs=1e-3)


def test_damaged_snapshots_are_none_not_an_error(tmp_path):
    config = tiny(method="deadwooding", seed=54)
    run(config, cache_dir=tmp_path)
    store = Cache(tmp_path).solves
    (store.folder(config) / SNAPSHOT_FILE).write_bytes(b"not a safetensors file")
    assert store.snapshots(config) is None
    assert run(with_updates(config, sparsity=0.95), cache_dir=tmp_path).record.prune_info["solve_cached"]
