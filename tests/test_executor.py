"""The sweep executor on Ray: the same rows as one process, failures named, its start-up errors.

Each test that needs Ray starts a local instance of 2 workers (127.0.0.1, token-protected, no
dashboard) and stops it before it ends.
"""
import ast
import json
import socket
import sys
from pathlib import Path

import pytest

from deadwood import bench
from deadwood.bench.executor import RayExecutor, compute_entry, plan
from deadwood.cli import main
from conftest import tiny
from test_bench import TINY

GRID = ["--methods", "deadwooding", "magnitude", "--sparsities", "0.9", "0.95", "--seeds", "0", "--epsilon", "0.1",
        "--no-throughput", *TINY]
# What a row computes; time_s, timings and the cached flags say how it was computed, not what.
VALUES = ("method", "sparsity", "seed", "key", "clean_accuracy", "robust_accuracy", "one_shot_accuracy",
          "global_sparsity", "teacher_clean_accuracy", "teacher_robust_accuracy", "warnings")


def _values(out):
    rows = json.loads((out / "bench.json").read_text())["rows"]
    return [{k: r[k] for k in VALUES} for r in rows]


def _imports_ray(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        if any(n == "ray" or n.startswith("ray.") for n in names):
            return True
    return False


def test_ray_is_imported_in_one_module_the_sweep_executor_and_the_app_uses_its_api():
    root = Path(__file__).resolve().parents[1]
    importers = sorted(str(p.relative_to(root)) for folder in ("deadwood", "app")
                       for p in (root / folder).rglob("*.py") if _imports_ray(p))
    assert importers == ["deadwood/bench/executor.py"]  # whose import sits inside a function: the walk sees it



def test_two_workers_give_exactly_the_rows_of_one_process(tmp_path):
    pytest.importorskip("ray")
    assert main(["bench", *GRID, "--out", str(tmp_path / "one"), "--cache-dir", str(tmp_path / "c1")]) == 0
    assert main(["bench", *GRID, "--workers", "2", "--out", str(tmp_path / "two"),
                 "--cache-dir", str(tmp_path / "c2")]) == 0
    one, two = _values(tmp_path / "one"), _values(tmp_path / "two")
    assert len(two) == 4 and two == one
    result = json.loads((tmp_path / "two" / "bench.json").read_text())
    assert result["complete"] is True and result["failures"] == []
    assert result["executor"] == {"workers": 2, "address": None, "threads_per_worker": 1}
    # the solve was its own task: every Deadwooding run started from it, and every run was computed here
    assert [r["solve_cached"] for r in result["rows"] if r["method"] == "deadwooding"] == [True, True]
    assert not any(r["cached"] for r in result["rows"])
    # the driver's cache holds every entry, so the same grid again is all look-ups (it resumes)
    spec = [c for c in _spec(tmp_path / "two").points()]
    assert all(not tasks for tasks in plan(spec, tmp_path / "c2").values())
    assert len(list((tmp_path / "c2" / "solves").iterdir())) == 1


def _spec(out):
    from deadwood import RunConfig

    base = RunConfig.from_dict(json.loads((out / "bench.json").read_text())["config"])
    return bench.BenchSpec(base, ("deadwooding", "magnitude"), (0.9, 0.95), (0,))


def test_the_plan_is_teachers_then_solves_then_runs_each_entry_once(tmp_path):
    configs = [tiny(method=m, sparsity=s, seed=seed) for seed in (0, 1) for m in ("deadwooding", "magnitude")
               for s in (0.9, 0.95)]
    phases = plan(configs, tmp_path)
    assert [t.config.seed for t in phases["teacher"]] == [0, 1]
    assert [(t.config.seed, t.config.method) for t in phases["solve"]] == [(0, "deadwooding"), (1, "deadwooding")]
    assert len(phases["run"]) == 8
    assert [n.kind for n in phases["run"][0].needs()] == ["teacher", "solve"]
    assert [n.kind for n in phases["run"][2].needs()] == ["teacher"]  # magnitude needs no solve


def _flaky(marker_dir):
    """A worker function: random at 0.9 raises, random at 0.95 kills its worker every time,
    magnitude at 0.95 kills its worker the first time only; the rest is compute_entry."""

    def flaky(kind, config, code, threads, *entries):
        import os as _os

        if kind == "run" and config.method == "random" and config.sparsity == 0.9:
            raise RuntimeError("boom")
        if kind == "run" and config.method == "random":
            _os._exit(1)
        if kind == "run" and config.method == "magnitude" and config.sparsity == 0.95:
            marker = _os.path.join(marker_dir, "killed-once")
            if not _os.path.exists(marker):
                open(marker, "w").close()
                _os._exit(1)
        return compute_entry(kind, config, code, threads, *entries)

    return flaky


def test_a_failing_task_is_named_and_the_others_finish_a_killed_worker_is_retried_once(tmp_path):
    pytest.importorskip("ray")
    spec = bench.BenchSpec(tiny(), ("magnitude", "random"), (0.9, 0.95), (0,))
    with RayExecutor(2, task=_flaky(str(tmp_path))) as executor:
        result = bench.run_bench(spec, tmp_path / "out", cache_dir=tmp_path / "cache", executor=executor,
                                 throughput=False)
    assert (tmp_path / "killed-once").exists()  # magnitude 0.95's first worker died; its retry finished
    assert sorted((r["method"], r["sparsity"]) for r in result["rows"]) == [("magnitude", 0.9), ("magnitude", 0.95)]
    failed = {(f["method"], f["sparsity"]): f for f in result["failures"]}
    assert set(failed) == {("random", 0.9), ("random", 0.95)}
    assert failed[("random", 0.9)]["kind"] == "run" and "RuntimeError: boom" in failed[("random", 0.9)]["error"]
    assert "worker died" in failed[("random", 0.95)]["error"]
    assert result["complete"] is False
    md = (tmp_path / "out" / "bench.md").read_text()
    assert "failed: run of random at sparsity 0.9, seed 0: RuntimeError: boom" in md


def test_autoattack_evaluations_run_on_the_workers_and_match_one_process(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    spec = bench.BenchSpec(tiny(), ("magnitude",), (0.9,), (0,), attacks=("pgd", "autoattack"), attack_samples=8)
    one = bench.run_bench(spec, tmp_path / "one", cache_dir=tmp_path / "c1", throughput=False)

    import deadwood.robustness as R

    def refuse(*args, **kwargs):
        raise AssertionError("the driver attacked a model itself")

    monkeypatch.setattr(R, "evaluate", refuse)  # the driver's only; the workers are other processes
    seen = []

    def on_task(kind, done, total, task, what, error=None):
        seen.append((kind, what))

    with RayExecutor(2) as executor:
        two = bench.run_bench(spec, tmp_path / "two", cache_dir=tmp_path / "c2", executor=executor, throughput=False,
                              on_task=on_task)
        assert two["complete"] is True and two["failures"] == []
        # the pruned model and the seed's teacher, each one task, each started once its run was cached
        assert seen.count(("attack", "start")) == 1 and seen.count(("attack", "done")) == 2
        assert seen.index(("attack", "done")) > seen.index(("run", "done"))
        stored = json.loads((tmp_path / "two" / "attacks.json").read_text())
        assert sorted(stored) == ["runs/magnitude-0.9-seed0", "teacher-seed0"]
        # resumed: every evaluation is a look-up, nothing is submitted again
        seen.clear()
        bench.run_bench(spec, tmp_path / "two", cache_dir=tmp_path / "c2", executor=executor, throughput=False,
                        on_task=on_task)
        assert not [s for s in seen if s[0] == "attack"]
    # the same numbers as the driver computes alone (one torch thread against its own: one sample at most apart)
    for a, b in zip(one["rows"], two["rows"], strict=True):
        for column in ("autoattack_accuracy", "autoattack_pgd_accuracy", "teacher_autoattack_accuracy"):
            assert a[column] == pytest.approx(b[column], abs=1 / 8 + 1e-9), column


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_is_a_clear_error_and_nothing_starts(tmp_path, capsys):
    address = f"127.0.0.1:{_closed_port()}"
    code = main(["bench", *GRID, "--ray-address", address, "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot reach the Ray cluster at {address}" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_ray_missing_with_several_workers_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["bench", *GRID, "--workers", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'ray==" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_workers_below_one_is_refused(tmp_path, capsys):
    assert main(["bench", *GRID, "--workers", "0", "--out", str(tmp_path / "out")]) == 2
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err


def test_the_app_reads_its_executor_from_the_environment(monkeypatch):
    from app.jobs.ray_grid import from_environment
    from deadwood.errors import ClusterError

    monkeypatch.delenv("DEADWOOD_WORKERS", raising=False)
    monkeypatch.delenv("DEADWOOD_RAY_ADDRESS", raising=False)
    assert from_environment() is None
    monkeypatch.setenv("DEADWOOD_WORKERS", "3")
    ex = from_environment()
    assert ex.workers == 3 and ex.address is None
    monkeypatch.setenv("DEADWOOD_WORKERS", "many")
    with pytest.raises(ClusterError, match=r"\$DEADWOOD_WORKERS must be a whole number >= 1, got 'many'"):
        from_environment()


def test_the_compare_pages_job_computes_its_grid_on_ray_from_its_thread(tmp_path):
    pytest.importorskip("ray")
    from app.jobs.ray_grid import batch_runner
    from deadwood.pipeline import Cache
    from app.jobs import Job

    configs = [tiny(method="magnitude", sparsity=s, seed=5) for s in (0.9, 0.95)]
    job = Job(configs, runner=batch_runner(configs, RayExecutor(2)), cache_dir=tmp_path)
    view = job.wait(300)
    assert view.state == "done", view.error
    assert view.finished == [c.key() for c in configs]
    assert all(Cache(tmp_path).has_run(c) for c in configs)
    # Ray computed them, and stopped: the job's own calls only read them from the cache
    assert view.cached == [c.key() for c in configs]
    import ray

    assert not ray.is_initialized()


def test_a_relative_data_folder_travels_as_an_absolute_one_under_the_same_key(tmp_path, monkeypatch):
    from deadwood.bench.executor import _located

    monkeypatch.chdir(tmp_path)
    config = tiny(data_dir="data")
    located = _located(config)
    assert located.data_dir == str(tmp_path.resolve() / "data") and located.key() == config.key()
