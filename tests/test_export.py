"""Export: every torch format loads back into the model class with the same logits; ONNX round-trips
through onnxruntime; bad input is one line and leaves no file behind."""
import os

import numpy as np
import pytest
import torch

import deadwood
from deadwood.deploy import export as ex
from deadwood.cli import main
from deadwood.errors import ExportError, RunFileError
from deadwood.storage.record import MODEL_FILE, copy_run

from fakerun import fake_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("export") / "run", deadwood.RunConfig(method="magnitude", sparsity=0.9))


@pytest.fixture(scope="module")
def test_x():
    return deadwood.load_dataset("digits", "test").x


def _fresh():
    return deadwood.build_model("mlp", deadwood.dataset_info("digits"))


@pytest.mark.parametrize("fmt", ["state_dict", "prune", "sparse"])
def test_torch_formats_load_back_into_the_model_class_with_the_same_logits(run_dir, test_x, tmp_path, fmt):
    out = tmp_path / f"model.{fmt}.pt"
    report = ex.export(run_dir, fmt, out)
    assert report["bytes"] == out.stat().st_size
    model = ex.load_export(out, fmt, _fresh())
    pruned = deadwood.load_run(run_dir).model
    with torch.inference_mode():
        assert torch.equal(model(test_x), pruned(test_x))  # the same numbers, not merely close
    if fmt == "sparse":
        state = torch.load(out, weights_only=True)
        assert state["2.weight"].layout == torch.sparse_csr  # what makes the file small
        assert out.stat().st_size < (run_dir / MODEL_FILE).stat().st_size


def test_onnx_round_trips_through_onnxruntime(run_dir, test_x, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    report = ex.export(run_dir, "onnx", out)
    assert report["check"]["same"] and report["check"]["samples"] == len(test_x)
    # Independently of the exporter's own check: load the file and run a batch size it was not traced with.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = test_x[:37]
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        want = deadwood.load_run(run_dir).model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got.argmax(1) == want.argmax(1)).all()


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_one_line_and_leaves_no_file(run_dir, tmp_path, capsys):
    run = ["export", "--run", str(run_dir)]
    assert "unknown export format 'zip'" in _one_line_error(capsys, run + ["--format", "zip",
                                                                           "--out", str(tmp_path / "a")])
    assert "does not exist" in _one_line_error(capsys, run + ["--format", "sparse",
                                                              "--out", str(tmp_path / "no" / "a.pt")])
    (tmp_path / "file").write_text("")
    assert "is not a folder" in _one_line_error(capsys, run + ["--format", "sparse",
                                                               "--out", str(tmp_path / "file" / "a.pt")])
    damaged = copy_run(run_dir, tmp_path / "damaged")
    data = (damaged / MODEL_FILE).read_bytes()
    (damaged / MODEL_FILE).write_bytes(data[: len(data) // 2])
    assert "checkpoint" in _one_line_error(capsys, ["export", "--run", str(damaged), "--format", "onnx",
                                                    "--out", str(tmp_path / "d.onnx")])
    (damaged / MODEL_FILE).unlink()
    assert "checkpoint not found" in _one_line_error(capsys, ["export", "--run", str(damaged), "--format",
                                                              "state_dict", "--out", str(tmp_path / "e.pt")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged", "file"]  # nothing written, nothing half


def test_an_unwritable_folder_is_refused_before_anything_runs(run_dir, tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(ExportError, match="is not writable"):
        ex.export(run_dir, "sparse", tmp_path / "a.pt")
    assert not list(tmp_path.iterdir())


def test_a_failing_write_leaves_no_partial_file(run_dir, tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ExportError, match="cannot write .*Permission denied"):
        ex.export(run_dir, "sparse", tmp_path / "a.pt")
    assert not list(tmp_path.iterdir())  # the temporary file is gone too


def test_loading_an_export_of_another_format_is_a_clear_error(run_dir, tmp_path):
    out = tmp_path / "m.pt"
    ex.export(run_dir, "prune", out)
    with pytest.raises(ExportError, match="is not a 'state_dict' export"):
        ex.load_export(out, "state_dict", _fresh())
    with pytest.raises(RunFileError):
        ex.load_export(tmp_path / "missing.pt", "sparse", _fresh())


def test_onnx_without_its_packages_is_a_one_line_error_and_writes_nothing(run_dir, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ExportError, match="ONNX export needs onnxscript: pip install onnxscript"):
        ex.export(run_dir, "onnx", tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
