"""``deadwood cost``: method-specific stage times, interleaved, with the runs' own results."""
import statistics

import pytest

from deadwood import ConfigError, run
from deadwood.bench.cost import STAGES, stage_seconds
from deadwood.cli import main as cli_main
from conftest import tiny


def test_stage_seconds_time_the_same_work_a_run_does():
    variants = {"magnitude": tiny(method="magnitude", seed=41), "deadwooding": tiny(method="deadwooding", seed=41)}
    res = stage_seconds(variants, repeats=2)
    for label, config in variants.items():
        r = res[label]
        assert all(r[s] >= 0 for s in STAGES) and len(r["all_totals"]) == 2
        assert r["total"] == pytest.approx(statistics.median(r["all_totals"]))
        record = run(config).record  # the same configuration through the pipeline: the same numbers
        assert r["one_shot_accuracy"] == record.one_shot_accuracy
        assert r["clean_accuracy"] == record.clean_accuracy
        assert r["robust_accuracy"] == record.robust_accuracy(config.epsilon)
    assert res["deadwooding"]["prune"] > res["magnitude"]["prune"]  # a dual solve against one global cut


def test_variants_must_share_a_teacher_and_parse(capsys):
    with pytest.raises(ConfigError, match="share one teacher"):
        stage_seconds({"a": tiny(seed=1), "b": tiny(seed=2)})
    assert cli_main(["cost", "--variant", "nolabel"]) == 2
    assert capsys.readouterr().err == "error: a variant is 'label:key=value,...', got 'nolabel'\n"
    assert cli_main(["cost", "--variant", "x:finetune.epochs"]) == 2
    assert "a variant setting is key=value" in capsys.readouterr().err
