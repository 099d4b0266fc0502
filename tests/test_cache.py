"""Nothing stale, nothing damaged served: results keyed on the code that made them, and ``deadwood cache``."""
import json
import shutil

import pytest

import deadwood
from deadwood import fingerprint
from deadwood import run
from deadwood.storage.cache import entries, prune
from deadwood.cli import main
from conftest import tiny


def test_the_fingerprint_moves_with_the_computing_code_and_only_with_it(tmp_path):
    copy = tmp_path / "deadwood"
    shutil.copytree(fingerprint.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint.fingerprint_of(copy)
    assert before == fingerprint.code_fingerprint()
    train = copy / "train.py"
    train.write_text(train.read_text().replace("def run_epochs(", "def run_epochs(  ", 1))  # an edit of the loop
    edited = fingerprint.fingerprint_of(copy)
    assert edited != before
    (copy / "cli" / "run.py").write_text("# a new help text\n" + (copy / "cli" / "run.py").read_text())
    (copy / "progress.py").write_text("# a new bar\n" + (copy / "progress.py").read_text())
    (copy / "deploy" / "export.py").write_text("# a new format\n" + (copy / "deploy" / "export.py").read_text())
    # the command line, progress bars and deployment compute nothing that is cached
    assert fingerprint.fingerprint_of(copy) == edited
    names = {p.relative_to(copy).as_posix() for p in fingerprint.computing_modules(copy)}
    assert {"train.py", "pipeline.py", "methods/deadwooding/method.py", "robustness/evaluation.py",
            "data/datasets.py", "pruning/masks.py", "models/registry.py"} <= names
    assert not any(n.startswith(("cli/", "bench/", "analysis/", "storage/", "deploy/")) for n in names)
    # what it covers is read from one list: every file under each entry, nothing else
    listed = {p for entry in fingerprint.COVERS for p in ([entry] if entry.endswith(".py") else
              [q.relative_to(copy).as_posix() for q in (copy / entry).rglob("*.py")])}
    assert names == listed


def test_editing_the_engine_code_makes_the_next_run_recompute(tmp_path, monkeypatch):
    config = tiny(method="magnitude", seed=61)
    first = run(config, cache_dir=tmp_path)
    assert first.record.code == fingerprint.code_fingerprint() and first.record.threads >= 1
    seen = []
    run(config, cache_dir=tmp_path, on_event=lambda e: seen.append((e.kind, e.stage)))
    assert ("cached", "run") in seen
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda: "edited-training-loop")
    seen.clear()
    again = run(config, cache_dir=tmp_path, on_event=lambda e: seen.append((e.kind, e.stage)))
    assert ("cached", "run") not in seen and ("start", "teacher") in seen  # the teacher is retrained too
    assert again.record.code == "edited-training-loop" and again.record.key != first.record.key


def test_cache_lists_verifies_and_prunes_stale_damaged_and_partial_entries(tmp_path, capsys):
    ok = tiny(method="magnitude", seed=62)
    run(ok, cache_dir=tmp_path)
    damaged = run(tiny(method="random", seed=62), cache_dir=tmp_path).path
    (damaged / "model.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    stale = run(tiny(method="dense", seed=62), cache_dir=tmp_path).path
    record = json.loads((stale / "record.json").read_text())
    (stale / "record.json").write_text(json.dumps({**record, "code": "an-older-engine"}))
    partial = tmp_path / "runs" / ".abc.tmp-123"
    partial.mkdir()

    states = {e.path: e.state for e in entries(tmp_path)}
    assert states[damaged] == "damaged" and states[stale] == "stale" and states[partial] == "partial"
    assert states[deadwood.Cache(tmp_path).run_dir(ok)] == "ok"
    assert main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "damaged" in out and "stale" in out and "made by other engine code (an-older-engine" in out

    assert main(["cache", "prune", "--dry-run", "--cache-dir", str(tmp_path)]) == 0
    assert damaged.exists() and stale.exists()
    gone = {e.path for e in prune(tmp_path)}
    assert gone == {damaged, stale, partial}
    assert not damaged.exists() and not stale.exists() and not partial.exists()
    assert main(["cache", "verify", "--cache-dir", str(tmp_path)]) == 0  # what is left is all servable
    seen = []
    run(ok, cache_dir=tmp_path, on_event=lambda e: seen.append((e.kind, e.stage)))
    assert ("cached", "run") in seen
    with pytest.raises(ValueError):
        prune(tmp_path, states=("ok",))
