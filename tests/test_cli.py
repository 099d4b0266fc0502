import subprocess
import sys

import pytest

from deadwood.cli import main

BAD = [
    (["--sparsity", "1.0"], "sparsity must be in [0, 1)"),
    (["--sparsity", "-0.2"], "sparsity must be in [0, 1)"),
    (["--epsilon", "-0.1"], "epsilon must be a number >= 0"),
    (["--epsilon", "nan"], "epsilon must be a number >= 0"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "alexnet"], "unknown model 'alexnet'"),
    (["--method", "snip"], "unknown method 'snip'"),
    (["--model", "resnet20"], "model 'resnet20' does not fit dataset 'digits'"),
    (["--sparsity", "lots"], "invalid float value: 'lots'"),
    (["--budget", "equal"], "unknown budget 'equal'; choose one of: matched, finetune"),
    (["--method", "hydra", "--hydra-epochs", "26"], "budget 'matched' gives hydra 25 epochs after the teacher"),
    (["--method", "gmp", "--gmp-start", "0.5", "--gmp-end", "0.5"], "gmp.end (0.5) must come after gmp.start (0.5)"),
    (["--method", "gmp", "--gmp-epochs", "0"], "gmp.epochs must be a whole number >= 1"),
    (["--dataset", "mnist", "--model", "lenet5", "--data-dir", "{tmp}/nowhere"], "dataset 'mnist' not found"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(args, message, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    try:
        code = main(["run", "--out", str(out), "--cache-dir", str(cache), *args])
    except SystemExit as e:  # argparse's own type errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not out.exists() and not cache.exists()


def test_cli_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deadwood", "run", "--sparsity", "0.9", "--out", str(out),
           "--cache-dir", str(tmp_path / "cache"), "--teacher-epochs", "3", "--deadwooding-epochs", "2",
           "--finetune-epochs", "1", "--evaluation-steps", "2", "--evaluation-samples", "60"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "dual solve" in done.stderr  # a progress bar per stage
    assert "one-shot" in done.stdout and (out / "record.json").is_file()
    # the plan when the run starts, and what the record says was trained
    assert done.stdout.startswith("budget matched: 3 epochs after the teacher (dual 2 + finetune 1)\n")
    assert "training  3 epochs after the teacher: dual 2 (46 steps), finetune 1 (23 steps)" in done.stdout
    again = subprocess.run(cmd + ["--force"], capture_output=True, text=True, timeout=300)  # replaces its own --out
    assert "from cache" in again.stderr


def test_list_flags_reach_the_configuration_as_tuples():
    from deadwood.cli import build_parser
    from deadwood.cli.options import config_from_args

    ns = build_parser().parse_args(["run", "--prune-layers-include", "0*", "2*", "--prune-layers-exclude", "4",
                                    "--evaluation-epsilons", "0", "0.2"])
    config = config_from_args(ns).validate()
    assert config.prune_layers.include == ("0*", "2*") and config.prune_layers.exclude == ("4",)
    assert config.evaluation.epsilons == (0.0, 0.2)


def test_cli_run_prints_the_records_warnings(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    import deadwood.pipeline
    from deadwood.storage.record import RunRecord

    line = "the pruned model's clean accuracy 33.3% is at chance level (1/3 = 33.3%, within 5.4 points on 300 test samples)"
    record = RunRecord(config={"epsilon": 0.1, "method": "magnitude"}, versions={}, warnings=[line])
    monkeypatch.setattr(deadwood.pipeline, "run", lambda *a, **k: SimpleNamespace(path=tmp_path, record=record))
    assert main(["run", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert f"warning: {line}\n" in capsys.readouterr().err
