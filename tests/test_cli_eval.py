"""``python -m deadwood eval``: re-evaluating a finished run, and its one-line errors."""
import json
import shutil

import pytest

from deadwood import run
from deadwood.cli import main
from conftest import tiny


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run, copied out of the cache."""
    out = tmp_path_factory.mktemp("runs") / "run"
    run(tiny(method="magnitude", seed=12), out=out)
    return out


def _record(path):
    return json.loads((path / "record.json").read_text())


BAD = [
    (["--epsilons", "-0.1"], "every epsilon must be a finite number >= 0, got -0.1"),
    (["--epsilons", "0.1", "nan"], "every epsilon must be a finite number >= 0, got nan"),
    (["--epsilons", "abc"], "argument --epsilons: invalid float value: 'abc'"),
    (["--attack", "carlini"], "unknown attack 'carlini'; choose one of: fgsm, pgd"),
    (["--samples", "0"], "samples must be a whole number > 0, got 0"),
    (["--attack", "fmn", "--step-size", "0.1"], "step_size applies to pgd and pgd-l2 only"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_and_leaves_the_record_alone(finished, args, message, capsys):
    before = (finished / "record.json").read_bytes()
    try:
        code = main(["eval", "--run", str(finished), *args])
    except SystemExit as e:  # argparse's own type errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert (finished / "record.json").read_bytes() == before


def test_a_run_directory_without_a_model(finished, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(finished, broken)
    (broken / "model.pt").unlink()
    assert main(["eval", "--run", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: run directory {broken} has no model: model.pt is missing\n"
    assert main(["eval", "--run", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"error: no run directory at {tmp_path / 'nowhere'}\n"


def test_eval_updates_the_record_for_both_models(finished, capsys):
    first = _record(finished)
    assert main(["eval", "--run", str(finished), "--attack", "fgsm", "--epsilons", "0.2", "0.05",
                 "--samples", "80"]) == 0
    out = capsys.readouterr().out
    assert "pruned" in out and "teacher" in out and "updated" in out
    rec = _record(finished)
    rob, teacher = rec["robustness"], rec["teacher"]["robustness"]
    assert rob["attack"] == teacher["attack"] == "fgsm"
    assert rob["epsilons"] == teacher["epsilons"] == [0.0, 0.05, 0.2]
    assert rob["samples"] == teacher["samples"] == 80 and rob["seed"] == teacher["seed"] == 12
    assert rob["class_counts"] == teacher["class_counts"]
    # the configured PGD curve is kept next to the new one
    assert rob["by_attack"]["pgd"]["accuracy"] == first["robustness"]["accuracy"]
    assert rob["by_attack"]["fgsm"]["accuracy"] == rob["accuracy"]
    assert teacher["by_attack"]["pgd"]["accuracy"] == first["teacher"]["robustness"]["accuracy"]
    # everything else is untouched
    assert {k: v for k, v in rec.items() if k not in ("robustness", "teacher")} == \
        {k: v for k, v in first.items() if k not in ("robustness", "teacher")}
