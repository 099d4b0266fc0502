"""``deadwood bench``: the grid, its three files, resuming, the GPU mode's CPU path, errors."""
import json
import os
import math
import re
import statistics

import pytest
import torch

from deadwood import bench
from deadwood.cli import main
from deadwood.storage.record import load_run
from deadwood.models.registry import build_model
from deadwood.bench.throughput import SYNTHETIC_NAME, step_throughput, synthetic_32x32
from conftest import tiny
from fakedata import write_cifar10

# The tiny configuration of conftest.tiny, as flags.
TINY = ["--teacher-epochs", "4", "--deadwooding-epochs", "3", "--hydra-epochs", "2", "--finetune-epochs", "2",
        "--evaluation-epsilons", "0", "0.1", "--evaluation-steps", "3", "--evaluation-samples", "120",
        "--attack", "pgd"]  # AutoAttack's column has tests of its own (test_autoattack.py)
FAST_THROUGHPUT = ["--throughput-steps", "1", "--throughput-repeats", "1", "--throughput-samples", "32"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2 methods x 2 sparsities x 2 seeds benchmark, run once through the CLI (its own cache)."""
    root = tmp_path_factory.mktemp("bench")
    out, cache = root / "out", root / "cache"
    code = main(["bench", "--methods", "deadwooding", "magnitude", "--sparsities", "0.9", "0.95", "--seeds", "0",
                 "1", "--epsilon", "0.1", "--out", str(out), "--cache-dir", str(cache), *TINY, *FAST_THROUGHPUT])
    assert code == 0
    return out, cache, json.loads((out / "bench.json").read_text())


def test_one_row_per_point_taken_from_its_run_record(finished):
    out, _, result = finished
    rows = result["rows"]
    assert result["complete"] is True
    assert sorted((r["method"], r["sparsity"], r["seed"]) for r in rows) == sorted(
        (m, s, seed) for m in ("deadwooding", "magnitude") for s in (0.9, 0.95) for seed in (0, 1))
    for r in rows:
        loaded = load_run(out / r["run"])
        rec = loaded.record
        assert rec.config["method"] == r["method"] and rec.config["sparsity"] == r["sparsity"]
        assert rec.config["seed"] == r["seed"] and rec.key == r["key"]
        assert r["clean_accuracy"] == rec.clean_accuracy and r["one_shot_accuracy"] == rec.one_shot_accuracy
        assert r["robust_accuracy"] == rec.robust_accuracy(0.1) and rec.robustness["attack"] == "pgd"
        assert r["time_s"] == pytest.approx(rec.timings["prune"] + rec.timings["finetune"] + rec.timings["eval"])
        assert r["time_s"] > 0 and abs(rec.global_sparsity - r["sparsity"]) < 1e-3


def test_one_teacher_per_seed_shared_by_every_method(finished):
    _, cache, result = finished
    assert len(list((cache / "teachers").iterdir())) == 2
    for seed in (0, 1):
        same = {(r["teacher_clean_accuracy"], r["teacher_robust_accuracy"]) for r in result["rows"]
                if r["seed"] == seed}
        assert len(same) == 1
    assert set(result["teachers"]) == {"0", "1"}


def _table(md: str) -> dict:
    """bench.md's table rows as {(method, sparsity): [cells]}."""
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and re.fullmatch(r"[0-9.]+", cells[1]):
            out[(cells[0], float(cells[1]))] = cells[2:]
    return out


def test_markdown_table_is_mean_and_sample_std_of_the_rows(finished):
    out, _, result = finished
    table = _table((out / "bench.md").read_text())
    assert set(table) == {(m, s) for m in ("deadwooding", "magnitude") for s in (0.9, 0.95)}
    for (method, sparsity), cells in table.items():
        rows = [r for r in result["rows"] if r["method"] == method and r["sparsity"] == sparsity]
        for cell, metric, digits in zip(cells, ("one_shot_accuracy", "clean_accuracy", "robust_accuracy", "time_s"),
                                        (3, 3, 3, 2)):
            values = [r[metric] for r in rows]
            mean, std = (float(v) for v in cell.split(" ± "))
            assert mean == pytest.approx(sum(values) / 2, abs=0.6 * 10 ** -digits)
            assert std == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2), abs=0.6 * 10 ** -digits)
        ratio = float(cells[4].rstrip("x"))
        mean_time = {m: statistics.fmean(r["time_s"] for r in result["rows"]
                                         if r["method"] == m and r["sparsity"] == sparsity)
                     for m in ("deadwooding", "magnitude")}
        assert ratio == pytest.approx(mean_time[method] / mean_time["magnitude"], abs=0.006)


def test_rows_carry_the_training_budget_and_the_report_names_the_protocol(finished):
    out, _, result = finished
    assert result["grid"]["budget"] == "matched"  # the default
    for r in result["rows"]:
        te = r["train_epochs"]
        # TINY: a solve of 3 epochs and a fine-tune of 2, so 5 epochs after the teacher for every method
        assert te["protocol"] == "matched" and te["total"] == 5 == sum(te["by_stage"].values())
        assert te["by_stage"] == ({"dual": 3, "finetune": 2} if r["method"] == "deadwooding" else {"finetune": 5})
        assert te["steps"] == {stage: n * 23 for stage, n in te["by_stage"].items()}  # 1437 images, batch 64
        assert te == {**load_run(out / r["run"]).record.train_epochs, "protocol": "matched"}
    md = (out / "bench.md").read_text()
    assert "Training budget: **matched** (`--budget matched`)" in md
    assert "deadwooding 5 (dual 3 + finetune 2)" in md and "magnitude 5 (finetune 5)" in md


def test_the_finetune_protocol_and_a_run_both_protocols_share(finished, tmp_path):
    _, cache, matched = finished
    out = tmp_path / "out"
    code = main(["bench", "--methods", "deadwooding", "magnitude", "--sparsities", "0.9", "--seeds", "0",
                 "--budget", "finetune", "--out", str(out), "--cache-dir", str(cache), *TINY, "--no-throughput"])
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert result["grid"]["budget"] == "finetune"
    assert rows["magnitude"]["train_epochs"]["by_stage"] == {"finetune": 2} and rows["magnitude"]["cached"] is False
    # Deadwooding trains alike under both protocols: the matched benchmark's run answers, labelled as asked
    before = next(r for r in matched["rows"] if r["method"] == "deadwooding" and r["sparsity"] == 0.9 and r["seed"] == 0)
    assert rows["deadwooding"]["cached"] is True and rows["deadwooding"]["key"] == before["key"]
    assert rows["deadwooding"]["train_epochs"] == {**before["train_epochs"], "protocol": "finetune"}
    md = (out / "bench.md").read_text()
    assert "Training budget: **finetune** (`--budget finetune`)" in md and "magnitude 2 (finetune 2)" in md


def test_chart_and_throughput_are_written(finished):
    out, _, result = finished
    html = (out / "pareto.html").read_text()
    assert "plotly" in html.lower() and "deadwooding" in html and "magnitude" in html
    if result["figure_note"] is None:  # kaleido rendered it
        assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (out / "pareto.png").exists() and "no PNG" in result["figure_note"]
    t = result["throughput"]
    assert set(t["images_per_second"]) == {"plain", "adversarial", "finetune", "dual", "pgd_eval"}
    assert all(v > 0 and math.isfinite(v) for v in t["images_per_second"].values())
    # timed with as many threads as the runs use ($DEADWOOD_THREADS, default 1)
    assert t["threads"] == result["environment"]["threads"] == int(os.environ.get("DEADWOOD_THREADS") or 1)
    assert t["device"] == "cpu"
    md = (out / "bench.md").read_text()
    assert "Deadwooding dual step" in md and "foolbox PGD vs plain-torch PGD" in md


def test_an_interrupted_benchmark_resumes_from_its_cached_runs(tmp_path):
    spec = bench.BenchSpec(tiny(seed=0), ("magnitude", "random"), (0.9, 0.95), (3,))
    out = tmp_path / "out"

    def stop_after_two(i, total, config, state):
        if state == "done" and i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bench.run_bench(spec, out, cache_dir=tmp_path / "cache", on_point=stop_after_two, throughput=False)
    partial = json.loads((out / "bench.json").read_text())
    assert partial["complete"] is False and len(partial["rows"]) == 2
    finished_before = {(r["method"], r["sparsity"]): r for r in partial["rows"]}

    computed = []
    result = bench.run_bench(spec, out, cache_dir=tmp_path / "cache", throughput=False,
                             on_point=lambda i, n, c, state: computed.append((c.method, c.sparsity, state)))
    states = {(m, s): st for m, s, st in computed if st != "start"}
    assert len(result["rows"]) == 4 and result["complete"] is True
    for point, row in finished_before.items():
        assert states[point] == "cached"
        again = next(r for r in result["rows"] if (r["method"], r["sparsity"]) == point)
        assert again["cached"] is True
        # a cached run reports the compute time it was recorded with, not the look-up
        assert again["time_s"] == row["time_s"] > 0 and again["clean_accuracy"] == row["clean_accuracy"]
    assert sorted(st for st in states.values()) == ["cached", "cached", "done", "done"]
    assert "not measured" in (out / "bench.md").read_text()



def test_a_benchmark_resumes_from_its_own_folder_when_the_cache_is_gone(tmp_path):
    spec = bench.BenchSpec(tiny(seed=0), ("magnitude",), (0.9, 0.95), (4,))
    out = tmp_path / "out"
    first = bench.run_bench(spec, out, cache_dir=tmp_path / "cache-a", throughput=False)
    # a damaged copy in the folder is not trusted: that point is computed again
    (out / "runs" / "magnitude-0.95-seed4" / "model.pt").write_bytes(b"not a checkpoint")
    # a run recorded under an older key function is found by its configuration, and re-addressed
    record_file = out / "runs" / "magnitude-0.9-seed4" / "record.json"
    record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "key": "0ld0ld0ld0ld0ld0"}))

    events = []
    again = bench.run_bench(spec, out, cache_dir=tmp_path / "cache-b", throughput=False,
                            on_event=lambda e: events.append((e.kind, e.stage)))
    by_point = {r["sparsity"]: r for r in again["rows"]}
    assert by_point[0.9]["cached"] is True and by_point[0.95]["cached"] is False
    assert by_point[0.9]["time_s"] == first["rows"][0]["time_s"]  # the recorded run, not a new one
    assert ("cached", "run") in events and any(k == "epoch" and s == "teacher" for k, s in events)
    # the restored run now lives in the new cache, the recomputed one replaced the damaged copy
    restored = tmp_path / "cache-b" / "runs" / first["rows"][0]["key"] / "record.json"
    assert json.loads(restored.read_text())["key"] == by_point[0.9]["key"] == first["rows"][0]["key"]
    model_file = out / "runs" / "magnitude-0.95-seed4" / "model.pt"
    assert model_file.read_bytes() != b"not a checkpoint"

BAD = [
    (["--methods", "snip"], "unknown method 'snip'"),
    (["--sparsities", "0.9", "1.0"], "sparsity must be in [0, 1), got 1.0"),
    (["--seeds", "0", "0"], "seed 0 is listed twice"),
    (["--seeds", "-1"], "every seed must be a whole number >= 0, got -1"),
    (["--epsilon", "-0.1"], "epsilon must be a number >= 0"),
    (["--model", "resnet20"], "model 'resnet20' does not fit dataset 'digits'"),
    (["--gpu", "--model", "mlp"], "--gpu runs resnet20 or vgg or torchvision:NAME on 32x32 inputs, not 'mlp'"),
    (["--gpu", "--dataset", "mnist"], "--gpu runs on 32x32 CIFAR-10 (or its synthetic stand-in), not 'mnist'"),
    (["--threads", "0"], "threads must be a whole number >= 1, got 0"),
    (["--budget", "equal"], "unknown budget 'equal'; choose one of: matched, finetune"),
    (["--methods", "gmp", "--gmp-epochs", "99"], "budget 'matched' gives gmp 25 epochs after the teacher"),
    (["--methods", "gmp", "--gmp-frequency", "100000"], "gmp cannot reach sparsity 0.9"),
    (["--throughput-samples", "-1"], "--throughput-samples must be >= 0, got -1"),
    (["--sparsities", "lots"], "invalid float value: 'lots'"),
    (["--dataset", "mnist", "--model", "lenet5", "--data-dir", "{tmp}/nowhere"], "dataset 'mnist' not found"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_arguments_fail_with_one_line_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    try:
        code = main(["bench", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *args])
    except SystemExit as e:  # argparse's own type errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_mode_without_a_gpu_says_so(tmp_path, capsys):
    assert main(["bench", "--gpu", "--out", str(tmp_path / "out")]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_threads_flag_sets_what_runs_read_and_restores_it(monkeypatch):
    from deadwood.device import deadwood_threads as _threads

    monkeypatch.setenv("DEADWOOD_THREADS", "5")
    with _threads(3):
        assert os.environ["DEADWOOD_THREADS"] == "3"
    assert os.environ["DEADWOOD_THREADS"] == "5"
    monkeypatch.delenv("DEADWOOD_THREADS")
    with _threads(2):
        assert os.environ["DEADWOOD_THREADS"] == "2"
    assert "DEADWOOD_THREADS" not in os.environ


def test_synthetic_stand_in_is_labelled_and_reproducible():
    a, b = synthetic_32x32(40, seed=1), synthetic_32x32(40, seed=1)
    assert a.x.shape == (40, 3, 32, 32) and a.x.min() >= 0 and a.x.max() <= 1
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, synthetic_32x32(40, seed=2).x)
    assert a.y.dtype == torch.int64 and set(a.y.tolist()) <= set(range(10))
    assert "timing only" in a.info.name and a.info.input_shape == (3, 32, 32)


def test_step_throughput_runs_the_32x32_models_on_cpu():
    data = synthetic_32x32(24)
    t = step_throughput("resnet20", data, data, batch_size=4, steps=1, repeats=1, eval_samples=8, pgd_steps=1)
    assert t["device"] == "cpu" and t["dataset"] == SYNTHETIC_NAME and t["amp"] is False
    rates = t["images_per_second"]
    assert set(rates) == set(t["ratios"]) and all(v > 0 and math.isfinite(v) for v in rates.values())
    assert t["ratios"]["plain"] == 1.0
    assert t["ratios"]["dual"] == pytest.approx(rates["plain"] / rates["dual"])
    assert t["dual_vs_finetune"] == pytest.approx(rates["finetune"] / rates["dual"])
    assert t["pgd_overhead"]["samples"] == 8
    # one step of each kind holds at least its batch's activations and the weights' gradients
    memory = t["peak_memory_bytes"]
    grads = sum(p.numel() * 4 for p in build_model("resnet20", data.info).parameters())
    assert set(memory) == {"plain", "adversarial", "finetune", "dual"} and all(v >= grads for v in memory.values())
    assert "profile_memory" in t["memory_method"]


def test_gpu_mode_times_a_torchvision_model_on_cpu_without_the_pgd_timing(tmp_path):
    out = tmp_path / "out"
    code = main(["bench", "--gpu", "--device", "cpu", "--model", "torchvision:resnet18", "--batch-size", "2",
                 "--out", str(out), "--throughput-steps", "1", "--throughput-repeats", "1",
                 "--throughput-samples", "0"])
    assert code == 0
    t = json.loads((out / "bench.json").read_text())["throughput"]
    assert t["model"] == "torchvision:resnet18" and t["pgd_overhead"] is None and "pgd_eval" not in t["ratios"]
    md = (out / "bench.md").read_text()
    assert "Dual step vs fine-tune step: " in md and "peak memory of one step (MiB)" in md and "PGD" not in md


def test_gpu_mode_on_cpu_with_the_synthetic_stand_in(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["bench", "--gpu", "--device", "cpu", "--model", "resnet20", "--batch-size", "4", "--out", str(out),
                 "--evaluation-steps", "1", "--throughput-steps", "1", "--throughput-repeats", "1",
                 "--throughput-samples", "8"])
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["rows"] == [] and result["grid"]["model"] == "resnet20"
    assert "synthetic" in result["note"] and "timing only" in result["note"]
    assert result["throughput"]["dataset"] == SYNTHETIC_NAME
    md = (out / "bench.md").read_text()
    assert "timing only, no accuracies" in md and "| method |" not in md
    assert not (out / "pareto.html").exists()


def test_gpu_mode_uses_cifar10_when_the_data_folder_holds_it(tmp_path):
    """The same path CUDA takes, run on the CPU with tiny fake CIFAR-10 files: a real grid."""
    write_cifar10(tmp_path / "data", per_batch=6)
    out = tmp_path / "out"
    code = main(["bench", "--gpu", "--device", "cpu", "--data-dir", str(tmp_path / "data"), "--methods", "magnitude",
                 "--sparsities", "0.9", "--seeds", "0", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--teacher-epochs", "1", "--finetune-epochs", "1", "--evaluation-steps", "1",
                 "--evaluation-epsilons", "0", "--no-throughput"])
    assert code == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["grid"]["dataset"] == "cifar10" and result["grid"]["model"] == "resnet20"
    assert not result["note"] and [r["method"] for r in result["rows"]] == ["magnitude"]
    assert result["rows"][0]["device"] == "cpu"


def test_summary_and_pareto_front_known_answers():
    rows = [{"method": m, "sparsity": 0.9, "seed": s, "one_shot_accuracy": a, "clean_accuracy": a,
             "robust_accuracy": a / 2, "time_s": t}
            for m, s, a, t in (("magnitude", 0, 0.5, 1.0), ("magnitude", 1, 0.7, 3.0),
                               ("deadwooding", 0, 0.9, 4.0), ("deadwooding", 1, 0.9, 6.0))]
    s = {e["method"]: e for e in bench.summarize(rows)}
    assert s["magnitude"]["clean_accuracy"]["mean"] == pytest.approx(0.6)
    assert s["magnitude"]["clean_accuracy"]["std"] == pytest.approx(math.sqrt(0.02))  # (n - 1) in the denominator
    assert s["deadwooding"]["clean_accuracy"]["std"] == 0
    assert s["deadwooding"]["cost_vs_magnitude"] == pytest.approx(5.0 / 2.0)
    assert bench.pareto_front([(0.9, 0.1), (0.5, 0.5), (0.4, 0.4), (0.1, 0.9), (0.5, 0.2)]) == \
        [(0.1, 0.9), (0.5, 0.5), (0.9, 0.1)]
