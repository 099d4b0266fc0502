"""Several processes on one cache: the same entry is computed once, whoever asks for it.

Real ``deadwood run`` processes, since the lock (``store.entry_lock``) is between processes.
"""
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from deadwood.storage import cache as cache_health
from deadwood.storage.files import entry_lock

# long enough a teacher (about 13 s on an idle 2-core machine) that the third process, which needs about 4 s
# to start and load the data, reaches the teacher while the first still computes it
SLOW = ["--method", "magnitude", "--teacher-epochs", "200", "--finetune-epochs", "1", "--evaluation-steps", "2",
        "--evaluation-samples", "60", "--seed", "5"]


# a Dual solve long enough (about 5-10 s here) to be waited for
SLOW_SOLVE = ["--method", "deadwooding", "--teacher-epochs", "2", "--deadwooding-epochs", "60", "--finetune-epochs",
              "1", "--evaluation-steps", "2", "--evaluation-samples", "60", "--seed", "6"]


def _cli(cache: Path, out: Path, *extra, log: Path, args=SLOW) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deadwood", "run", *args, *extra, "--cache-dir", str(cache),
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _held(cache: Path, kind: str) -> bool:
    """Whether some process holds the lock of an entry of ``kind`` ('runs', 'teachers') now."""
    for path in (cache / "locks").glob(f"{kind}.*.lock"):
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    return False


def test_two_processes_asking_for_one_run_compute_it_once_and_both_succeed(tmp_path):
    cache = tmp_path / "cache"
    first = _cli(cache, tmp_path / "a", log=tmp_path / "a.log")
    deadline = time.time() + 120
    while not _held(cache, "teachers"):  # the first holds its run and is training the teacher
        assert first.poll() is None and time.time() < deadline, (tmp_path / "a.log").read_text()
        time.sleep(0.05)
    same = _cli(cache, tmp_path / "b", log=tmp_path / "b.log")  # the same run
    other = _cli(cache, tmp_path / "c", "--sparsity", "0.8", log=tmp_path / "c.log")  # the same teacher
    assert [p.wait(600) for p in (first, same, other)] == [0, 0, 0], [
        (tmp_path / f"{n}.log").read_text()[-2000:] for n in "abc"]
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in "abc"}
    assert "waiting for another process computing this run" in logs["b"]
    assert "teacher (dense)" in logs["a"]  # the first trains the teacher, with a progress bar
    assert "run: from cache" in logs["b"] and "teacher (dense)" not in logs["b"]  # served, never trained
    assert "teacher (dense): waiting for another process computing this teacher" in logs["c"]
    assert "teacher (dense): from cache" in logs["c"]
    a, b, c = (json.loads((tmp_path / n / "record.json").read_text()) for n in "abc")
    assert a == b  # one computation: the very same record, timings and all
    assert c["teacher"]["cached"] and c["teacher"]["key"] == a["teacher"]["key"]
    assert c["config"]["sparsity"] == 0.8 and a["config"]["sparsity"] != 0.8
    found = cache_health.entries(cache)
    assert sorted(e.kind for e in found) == ["run", "run", "teacher"] and {e.state for e in found} == {"ok"}


def test_a_solve_another_process_is_computing_is_waited_for_then_loaded(tmp_path):
    cache = tmp_path / "cache"
    first = _cli(cache, tmp_path / "a", "--sparsity", "0.9", log=tmp_path / "a.log", args=SLOW_SOLVE)
    deadline = time.time() + 120
    while not _held(cache, "solves"):
        assert first.poll() is None and time.time() < deadline, (tmp_path / "a.log").read_text()
        time.sleep(0.05)
    second = _cli(cache, tmp_path / "b", "--sparsity", "0.8", log=tmp_path / "b.log", args=SLOW_SOLVE)
    assert [p.wait(600) for p in (first, second)] == [0, 0], (tmp_path / "b.log").read_text()[-2000:]
    assert "waiting for another process computing this solve" in (tmp_path / "b.log").read_text()
    a, b = (json.loads((tmp_path / n / "record.json").read_text()) for n in "ab")
    assert not a["prune_info"]["solve_cached"] and b["prune_info"]["solve_cached"]  # solved once
    dual = [[h["lambdas"] for h in r["history"] if h["phase"] == "dual"] for r in (a, b)]
    assert len(dual[0]) == 60 and dual[0] == dual[1]
    assert {e.state for e in cache_health.entries(cache)} == {"ok"}


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    final = tmp_path / "runs" / "k"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from deadwood.storage.files import entry_lock\n"
                               f"with entry_lock({str(final)!r}):\n print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    tries = []

    def on_wait():
        tries.append(time.time())
        if len(tries) == 2:
            os.kill(holder.pid, 9)  # SIGKILL: no chance to clean up

    with entry_lock(final, on_wait) as waited:
        assert waited and len(tries) >= 2
    holder.wait(10)
    with entry_lock(final) as waited:  # nobody holds it now
        assert not waited
