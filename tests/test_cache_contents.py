"""``deadwood cache`` sees the whole cache: a solve's snapshots verified (loaded without pickle and
matched against what the solve notes) and the app's analysis results listed, verified and pruned."""
import json
import os
import time

import numpy as np
import torch

from deadwood import run, with_updates
from deadwood.cli import main
from deadwood.storage import analyses
from deadwood.storage.cache import Cache, entries, prune
from deadwood.storage.files import atomic_save_tensors, load_tensors
from deadwood.storage.solves import SNAPSHOT_FILE, SUMMARY_FILE
from app import replay
from app.jobs import analysis
from conftest import tiny


def _solve_state(cache, config):
    return {e.path: (e.state, e.why) for e in entries(cache) if e.kind == "solve"}[Cache(cache).solve_dir(config)]


def test_verify_reports_a_damaged_snapshot_file_and_prune_drops_the_snapshots_alone(tmp_path, capsys):
    config = tiny(method="deadwooding", seed=71)
    run(config, cache_dir=tmp_path)
    folder = Cache(tmp_path).solve_dir(config)
    assert _solve_state(tmp_path, config) == ("ok", "")
    (folder / SNAPSHOT_FILE).write_bytes(b"not a safetensors file")

    # list reads summaries only: the file is there; verify loads it
    assert [(e.kind, e.state) for e in entries(tmp_path, deep=False) if e.kind == "solve"] == [("solve", "ok")]
    assert main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("solve"))
    assert "damaged" in line and f"{SNAPSHOT_FILE} is damaged" in line and "the replay cannot" in line
    assert "1 damaged" in out.splitlines()[-1]

    # prune drops the snapshots alone: the solve, minutes of work, still serves runs at every κ
    assert {e.path for e in prune(tmp_path, dry_run=True)} == {folder / SNAPSHOT_FILE}
    assert (folder / SNAPSHOT_FILE).is_file()
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    assert f"removed  solve    damaged  {folder / SNAPSHOT_FILE}" in capsys.readouterr().out
    assert not (folder / SNAPSHOT_FILE).exists() and (folder / "student.pt").is_file()
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    assert "snapshots" not in summary and f"{SNAPSHOT_FILE} is damaged" in summary["snapshots_dropped"]
    assert replay.why_missing(summary) == "damaged"  # the replay says so, not "stored before snapshots"
    assert _solve_state(tmp_path, config) == ("ok", "")
    assert main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 0
    again = run(with_updates(config, sparsity=0.95), cache_dir=tmp_path)
    assert again.record.prune_info["solve_cached"] is True
    assert Cache(tmp_path).solves.snapshots(config) is None  # the replay will ask for a fresh solve


def test_prune_removes_a_solve_that_is_damaged_beyond_its_snapshots(tmp_path):
    config = tiny(method="deadwooding", seed=74)
    run(config, cache_dir=tmp_path)
    folder = Cache(tmp_path).solve_dir(config)
    (folder / SNAPSHOT_FILE).write_bytes(b"not a safetensors file")
    (folder / "student.pt").write_bytes(b"truncated")
    assert _solve_state(tmp_path, config)[0] == "damaged"
    assert {e.path for e in prune(tmp_path)} == {folder}
    assert not folder.exists()
    again = run(with_updates(config, sparsity=0.95), cache_dir=tmp_path)
    assert again.record.prune_info["solve_cached"] is False  # solved afresh, snapshots and all
    assert Cache(tmp_path).solves.snapshots(config) is not None


def test_verify_finds_snapshots_that_load_but_do_not_match_the_solve(tmp_path):
    config = tiny(method="deadwooding", seed=72)
    run(config, cache_dir=tmp_path)
    folder = Cache(tmp_path).solve_dir(config)
    good = load_tensors(folder / SNAPSHOT_FILE)
    note = json.loads((folder / SUMMARY_FILE).read_text())["snapshots"]
    first = f"0/{note['layers'][0]}"

    def stored(tensors):
        atomic_save_tensors(folder / SNAPSHOT_FILE, tensors)
        return _solve_state(tmp_path, config)

    assert stored({**good, first: good[first].float()}) == (
        "damaged", f"{SNAPSHOT_FILE}: {first} is torch.float32, {SUMMARY_FILE} notes float16; "
                   "runs still start from this solve, the replay cannot")
    state, why = stored({**good, first: good[first][:1]})
    assert state == "damaged" and f"{first} has shape" in why
    last = f"{note['epochs'] - 1}/{note['layers'][-1]}"
    state, why = stored({k: v for k, v in good.items() if k != last})
    assert state == "damaged" and f"lacks 1 of the {len(good)} tensors" in why and last in why
    state, why = stored({**good, f"{note['epochs']}/{note['layers'][0]}": good[first].clone()})
    assert state == "damaged" and "does not note" in why
    assert stored(good) == ("ok", "")
    # the summary promising snapshots that are not there is found by list too, without loading
    (folder / SNAPSHOT_FILE).unlink()
    assert {e.path: e.state for e in entries(tmp_path, deep=False)}[folder] == "damaged"


def test_the_replay_says_why_a_solve_has_no_snapshots():
    note = {"layers": ["0.weight"], "epochs": 3, "weights": 10, "dtype": "float16"}
    assert replay.why_missing({"history": []}) == "old"
    assert replay.why_missing({"snapshots": {**note, "epochs": 0}}) == "large"
    assert replay.why_missing({"snapshots": note}) == "damaged"  # noted, yet they did not load
    assert replay.why_missing({"snapshots_dropped": "snapshots.safetensors is damaged: ..."}) == "damaged"


def test_a_solve_that_kept_no_snapshots_is_ok(tmp_path):
    config = tiny(method="deadwooding", seed=73)
    run(config, cache_dir=tmp_path)
    folder = Cache(tmp_path).solve_dir(config)
    (folder / SNAPSHOT_FILE).unlink()
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    (folder / SUMMARY_FILE).write_text(json.dumps({**summary, "snapshots": {**summary["snapshots"], "epochs": 0}}))
    assert _solve_state(tmp_path, config) == ("ok", "")  # a model above the size limit keeps none
    del summary["snapshots"]
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    assert _solve_state(tmp_path, config) == ("ok", "")  # stored before solves kept them


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_analysis_results_are_listed_verified_and_pruned(tmp_path, capsys):
    folder = tmp_path / analyses.FOLDER
    good = folder / "regions-0123456789abcdef01234567.npz"
    analysis.save(good, {"counts": np.arange(5), "label": "dense", (0.9, 1): [1.5]})  # as the app's worker writes
    truncated = folder / "similarity-89abcdef0123456789abcdef.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    pickled = folder / "explore-00000000000000000000000a.npz"
    np.savez(pickled, __json__=np.frombuffer(b"{}", dtype=np.uint8), a0=np.array([{"code": 1}], dtype=object))
    abandoned = folder / f".{good.name}.k3j2h1"
    abandoned.write_bytes(b"half a result")
    _age(abandoned, 2 * analyses.ABANDONED_AFTER_S)
    young = folder / f".{pickled.name}.x9y8z7"
    young.write_bytes(b"being written")
    (folder / "notes.txt").write_text("not a result")  # not of the layout: left alone

    listed = {e.path: e for e in entries(tmp_path, deep=False)}
    assert set(listed) == {good, truncated, pickled, abandoned, young}
    assert all(e.kind == "analysis" and e.bytes == e.path.stat().st_size for e in listed.values())
    assert {p: e.state for p, e in listed.items()} == {good: "ok", truncated: "damaged", pickled: "ok",
                                                       abandoned: "partial", young: "writing"}
    found = {e.path: e.state for e in entries(tmp_path)}  # verify loads them: the pickled one is refused
    assert found[pickled] == "damaged" and found[good] == "ok"

    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert any(x.startswith("analysis") and good.name in x and " ok " in x for x in out.splitlines())
    assert out.splitlines()[-1].startswith("5 entries (5 analysis), ")
    assert main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "does not load without pickle" in out and "not a readable numpy archive" in out

    assert main(["cache", "prune", "--dry-run", "--cache-dir", str(tmp_path)]) == 0
    assert truncated.exists() and pickled.exists() and abandoned.exists()
    gone = {e.path for e in prune(tmp_path)}
    assert gone == {truncated, pickled, abandoned}
    assert not any(p.exists() for p in gone)
    assert young.exists() and (folder / "notes.txt").exists()
    loaded = analysis.load(good)  # the result kept still serves
    assert loaded["label"] == "dense" and loaded[(0.9, 1)] == [1.5] and list(loaded["counts"]) == list(range(5))


def test_the_app_stores_analysis_results_where_the_cache_command_looks(tmp_path):
    task = analysis.Analysis.of("distortion", {"configs": []})
    path = task.path(tmp_path)
    assert path.parent == tmp_path / analyses.FOLDER and analyses.NAME.match(path.name)
    analysis.save(path, {"x": torch.ones(2)})
    assert [(e.kind, e.state) for e in entries(tmp_path)] == [("analysis", "ok")]
