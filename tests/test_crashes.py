"""A run that dies or cannot write never leaves the cache serving something partial (issue 15's faults):
SIGKILL during each stage of a real ``deadwood run`` process, then a rerun; a full disk."""
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from deadwood.storage import cache as cache_health
from deadwood.cli import main

# every stage long enough (half a second or more here) to be caught running
ARGS = ["run", "--method", "deadwooding", "--teacher-epochs", "10", "--deadwooding-epochs", "10",
        "--finetune-epochs", "4", "--evaluation-steps", "40", "--evaluation-samples", "180", "--seed", "7"]
BAR = {"teacher": "teacher (dense)", "dual": "dual solve", "finetune": "fine-tune", "eval": "evaluate"}


def _states(cache) -> dict:
    return {(e.kind, e.state) for e in cache_health.entries(cache)}


def _kill_in(stage, cmd, log) -> str:
    """Start ``cmd``, SIGKILL it once its progress shows ``stage`` running; what it wrote to stderr."""
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 300
    while BAR[stage] not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    return log.read_text()


def test_a_run_killed_in_each_stage_serves_nothing_partial_and_each_rerun_reuses_what_finished(tmp_path):
    """One run, killed in each stage in turn: each process resumes from what the one before stored.
    After each kill nothing of the stage it was in is stored and nothing is damaged, while every stage
    that finished before stays stored and is read, not computed, by the next process."""
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "deadwood", *ARGS, "--cache-dir", str(cache)]
    for stage in BAR:
        said = _kill_in(stage, cmd, tmp_path / f"killed-in-{stage}.log")
        states = _states(cache)
        assert not any(kind == "run" for kind, _ in states), stage  # no run entry at all, whole or not
        assert not any(state == "damaged" for _, state in states), stage
        assert (("teacher", "ok") in states) == (stage != "teacher"), stage  # what finished before stays
        assert (("solve", "ok") in states) == (stage in ("finetune", "eval")), stage
        # the process killed here started from what the last one stored (in the dual solve: nothing)
        assert ("teacher (dense): from cache" in said) == (stage in ("finetune", "eval")), stage
        assert ("dual solve: from cache" in said) == (stage == "eval"), stage

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "teacher (dense): from cache" in rerun.stderr and "dual solve: from cache" in rerun.stderr
    assert {state for _, state in _states(cache)} == {"ok"}


TINY = ["--teacher-epochs", "2", "--finetune-epochs", "1", "--evaluation-steps", "2", "--evaluation-samples", "60",
        "--seed", "8"]


@pytest.mark.parametrize("full_from", ["teacher", "run"])
def test_a_full_disk_is_a_clear_error_and_the_cache_stays_valid(full_from, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    run = ["run", "--cache-dir", str(cache), *TINY]
    if full_from == "run":  # the teacher and one run are stored before the disk fills
        assert main([*run, "--method", "magnitude"]) == 0
    before = _states(cache)
    real = os.fsync

    def full(fd):  # what writing a file does on a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    capsys.readouterr()
    assert main([*run, "--method", "random"]) == 2
    err = capsys.readouterr().err.rstrip("\n").split("\n")[-1]  # after the progress bars
    assert err.startswith(f"error: cannot write {cache / (full_from + 's')}/") and "\r" not in err, err
    assert err.endswith("(No space left on device)")
    monkeypatch.setattr(os, "fsync", real)

    assert _states(cache) == before  # nothing half-written, nothing lost
    assert not any(p.name.startswith(".") for d in ("teachers", "runs") if (cache / d).is_dir()
                   for p in (cache / d).iterdir())
    assert main(["cache", "verify", "--cache-dir", str(cache)]) == 0
    assert main([*run, "--method", "random"]) == 0  # space again: it computes and is stored
    assert {state for _, state in _states(cache)} == {"ok"}
