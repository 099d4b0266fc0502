import json
import os
import pickle

import pytest
import torch

from deadwood import RunFileError, load_run, run
from deadwood.pruning.masks import prunable
from conftest import tiny


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    loaded = run(tiny(method="magnitude"), out=out)
    return out, loaded


def test_run_directory_holds_record_and_two_checkpoints(finished):
    out, _ = finished
    assert sorted(p.name for p in out.iterdir()) == ["dense.pt", "model.pt", "record.json"]
    rec = json.loads((out / "record.json").read_text())
    for field in ("config", "versions", "history", "layer_sparsity", "layer_sizes", "global_sparsity",
                  "one_shot_accuracy", "clean_accuracy", "robustness", "timings"):
        assert field in rec, field
    assert {"deadwood", "torch", "torchvision", "foolbox", "python"} <= set(rec["versions"])
    assert {h["phase"] for h in rec["history"]} >= {"teacher", "finetune"}


def test_load_run_gives_eval_model_with_saved_weights(finished):
    out, loaded = finished
    again = load_run(out)
    assert not again.model.training
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in again.model.state_dict().items())
    layer_names = set(prunable(again.model))
    assert set(again.record.layer_sparsity) == layer_names == set(again.record.layer_sizes)
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(again.model(x), loaded.model(x))
    assert again.dense()(x).shape == (3, 10)


def _copy(out, dst):
    dst.mkdir()
    for f in out.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_load_run_refuses_a_tampered_pickle_without_running_it(finished, tmp_path):
    out, _ = finished
    dst = _copy(out, tmp_path / "tampered")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(dst / "model.pt", "wb") as f:
        pickle.dump({"0.weight": Evil()}, f)
    with pytest.raises(RunFileError, match="model.pt is not a plain-tensor checkpoint"):
        load_run(dst)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_refusing_a_tampered_pickle_never_advises_loading_it_unsafely(finished, tmp_path, protocol):
    out, _ = finished
    dst = _copy(out, tmp_path / "tampered")

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    with open(dst / "model.pt", "wb") as f:
        pickle.dump({"0.weight": Evil()}, f, protocol=protocol)
    with pytest.raises(RunFileError) as e:
        load_run(dst)
    msg = str(e.value)
    assert "weights_only" not in msg and "likely succeed" not in msg and "safe_globals" not in msg
    assert "\n" not in msg and msg.startswith(str(dst / "model.pt"))
    if protocol == 2:  # the import is reached before anything the unpickler rejects
        assert f"it asks to import {os.system.__module__}.system" in msg and "may be malicious" in msg


@pytest.mark.parametrize("size", [0, 1, 10, 1000, 5000, 50_000, "half", "len-1"])
def test_every_truncation_of_a_checkpoint_is_a_run_file_error(finished, tmp_path, size):
    out, _ = finished
    dst = _copy(out, tmp_path / "truncated")
    data = (out / "model.pt").read_bytes()
    n = {"half": len(data) // 2, "len-1": len(data) - 1}.get(size, size)
    assert n < len(data)
    (dst / "model.pt").write_bytes(data[:n])
    with pytest.raises(RunFileError, match="model.pt is not a plain-tensor checkpoint this program can load safely"):
        load_run(dst)


def test_load_run_refuses_corrupt_and_foreign_files(finished, tmp_path):
    out, _ = finished
    corrupt = _copy(out, tmp_path / "corrupt")
    (corrupt / "model.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(RunFileError, match="not a plain-tensor checkpoint"):
        load_run(corrupt)
    foreign = _copy(out, tmp_path / "foreign")
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, foreign / "model.pt")
    with pytest.raises(RunFileError, match="does not match model 'mlp'"):
        load_run(foreign)
    with pytest.raises(RunFileError, match="record.json is missing"):
        load_run(tmp_path / "nothing-here")
    bad_json = _copy(out, tmp_path / "badjson")
    (bad_json / "record.json").write_text("{not json")
    with pytest.raises(RunFileError, match="not a valid run record"):
        load_run(bad_json)
