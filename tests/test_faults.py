"""Input the engine accepts must never crash it or lose data: each fault from issue 19, through the CLI
where it is a CLI case (exit status 2 and one line ``error: ...``), else through the engine."""
import json

import pytest

from deadwood import load_run
from deadwood.cli import main
from fakedata import write_mnist

TINY = ["--teacher-epochs", "2", "--deadwooding-epochs", "2", "--finetune-epochs", "1",
        "--evaluation-steps", "2", "--evaluation-samples", "60"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("method", ["magnitude", "deadwooding"])
def test_sparsity_zero_is_the_dense_baseline_and_its_record_loads(method, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--method", method, "--sparsity", "0", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *TINY]) == 0
    record = json.loads((out / "record.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"record.json holds {c}"))
    assert record["global_sparsity"] == 0.0 and record["prune_info"]["threshold"] is None
    loaded = load_run(out)
    assert all(s == 0.0 for s in loaded.record.layer_sparsity.values())


def test_garbage_mnist_files_are_one_line_naming_the_file(tmp_path, capsys):
    write_mnist(tmp_path / "data")
    bad = tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00" * 3 + b"garbage" * 20)
    code = main(["run", "--dataset", "mnist", "--model", "lenet5", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *TINY])
    assert code == 2
    err = _one_line_error(capsys)
    assert str(bad) in err and "is not an MNIST image file" in err and "--download" not in err
    assert not (tmp_path / "out").exists()


def test_eval_of_a_truncated_model_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--method", "magnitude", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 *TINY]) == 0
    data = (out / "model.pt").read_bytes()
    (out / "model.pt").write_bytes(data[:min(50_000, len(data) // 2)])
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 2
    err = _one_line_error(capsys)
    assert f"{out / 'model.pt'} is not a plain-tensor checkpoint" in err and "damaged or truncated" in err
