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


# --------------------------------------------------------------------------- --out never destroys data

def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _run_out(tmp_path, out, *extra):
    return main(["run", "--method", "magnitude", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 *TINY, *extra])


def test_out_refuses_a_folder_that_is_not_a_run_before_any_work(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "important.txt").write_text("keep me")
    (out / "sub" / "notes.md").write_text("and me")
    assert _run_out(tmp_path, out) == 2
    err = _one_line_error(capsys)
    assert f"{out} is not empty and is not a run directory" in err
    assert (out / "important.txt").read_text() == "keep me" and (out / "sub" / "notes.md").read_text() == "and me"
    assert not (tmp_path / "cache").exists()  # refused before training anything
    assert _hidden(tmp_path) == []


def test_out_refuses_a_file_and_leaves_it_where_it_is(tmp_path, capsys):
    out = tmp_path / "results"
    out.write_text("a file")
    assert _run_out(tmp_path, out, "--force") == 2
    assert f"{out} is a file, not a run directory" in _one_line_error(capsys)
    assert out.read_text() == "a file" and _hidden(tmp_path) == []


def test_out_replaces_a_previous_run_only_with_force(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run_out(tmp_path, out) == 0
    first = (out / "record.json").read_text()
    capsys.readouterr()
    assert _run_out(tmp_path, out, "--sparsity", "0.8") == 2
    assert f"{out} holds a previous run; replace it with --force" in _one_line_error(capsys)
    assert (out / "record.json").read_text() == first
    assert _run_out(tmp_path, out, "--sparsity", "0.8", "--force") == 0
    assert json.loads((out / "record.json").read_text())["config"]["sparsity"] == 0.8
    assert sorted(p.name for p in out.iterdir()) == ["dense.pt", "model.pt", "record.json"]
    assert _hidden(tmp_path) == [] and not any(p.name.startswith(".") for p in (tmp_path / "cache" / "runs").iterdir())


def test_out_may_be_an_empty_folder(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _run_out(tmp_path, out) == 0
    assert (out / "record.json").is_file() and _hidden(tmp_path) == []


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder nobody may write into. Permission bits do not stop root, so under root the
    operating system's refusal is played by ``os.mkdir`` for that folder."""
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.mkdir

        def mkdir(path, *args, **kwargs):
            if os.path.dirname(os.path.abspath(path)) == str(folder):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
    yield folder
    folder.chmod(0o755)


def test_out_in_a_read_only_folder_names_the_folder(tmp_path, read_only, capsys):
    assert _run_out(tmp_path, read_only / "run") == 2
    err = _one_line_error(capsys)
    assert f"cannot write into {read_only} (Permission denied)" in err
    assert not (tmp_path / "cache").exists() and list(read_only.iterdir()) == []


def test_a_read_only_cache_is_named_before_any_work(tmp_path, read_only, capsys):
    code = main(["run", "--method", "magnitude", "--cache-dir", str(read_only / "cache"), *TINY])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: cannot write into {read_only} (Permission denied): the cache folder "
                            f"{read_only / 'cache'} must be writable; choose another with DEADWOOD_CACHE "
                            "(or --cache-dir)\n")  # one line, and no progress bar before it


def test_out_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    assert _run_out(tmp_path, tmp_path / "plain" / "run") == 2
    assert f"{tmp_path / 'plain'} is a file" in _one_line_error(capsys)


def test_a_failed_copy_leaves_nothing_behind(tmp_path):
    from deadwood.storage.record import copy_run

    src = tmp_path / "src"
    src.mkdir()
    (src / "record.json").write_text("{}")  # model.pt and dense.pt missing: the copy fails midway
    with pytest.raises(FileNotFoundError):
        copy_run(src, tmp_path / "dst")
    assert not (tmp_path / "dst").exists() and _hidden(tmp_path) == []


def test_publishing_sweeps_what_a_crashed_writer_left_and_nothing_else(tmp_path):
    import os
    import subprocess
    import sys

    from deadwood.storage.files import publish_dir, staging_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    final = tmp_path / "entry"
    left = [tmp_path / f".entry.old-{dead}-ab12cd34", tmp_path / f".entry.tmp-{dead}-x_9yz1k2"]
    kept = [tmp_path / f".entry.old-{os.getpid()}-ffff0000",  # a live writer's (ours)
            tmp_path / f".entry.old-{dead}-00000000",  # not flat: not ours to remove
            tmp_path / ".other.old-1-00000000"]
    for d in left + kept:
        d.mkdir()
        (d / "model.pt").write_bytes(b"x")
    (kept[1] / "sub").mkdir()
    tmp = staging_dir(final)
    (tmp / "a").write_text("new")
    publish_dir(tmp, final)
    assert (final / "a").read_text() == "new"
    assert not any(d.exists() for d in left) and all(d.exists() for d in kept)


def test_staged_publishes_a_whole_folder_and_replaces_the_old_one_at_once(tmp_path):
    from deadwood.storage.files import staged

    final = tmp_path / "entry"
    with staged(final) as tmp:
        (tmp / "a").write_text("old")
    assert (final / "a").read_text() == "old" and _hidden(tmp_path) == []
    with staged(final) as tmp:
        (tmp / "a").write_text("new")
        (tmp / "b").write_text("new")
        assert tmp.parent == final.parent and tmp.name.startswith(".entry.tmp-")
        assert [p.name for p in final.iterdir()] == ["a"] and (final / "a").read_text() == "old"  # not yet seen
    assert {p.name: p.read_text() for p in final.iterdir()} == {"a": "new", "b": "new"}
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("old", [False, True])
def test_a_crash_inside_staged_leaves_the_final_path_as_it_was_and_no_staging_folder(tmp_path, old):
    from deadwood.storage.files import staged

    final = tmp_path / "entry"
    if old:
        final.mkdir()
        (final / "a").write_text("old")
    with pytest.raises(RuntimeError, match="crash"):
        with staged(final) as tmp:
            (tmp / "a").write_text("half")
            raise RuntimeError("crash")
    assert ({p.name: p.read_text() for p in final.iterdir()} == {"a": "old"}) if old else not final.exists()
    assert _hidden(tmp_path) == []


def test_staged_syncs_every_file_before_the_rename_that_publishes_them(tmp_path, monkeypatch):
    from deadwood.storage import files

    seen, fsync, replace = [], files.os.fsync, files.os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: (seen.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(files.os, "replace", lambda a, b: (seen.append("replace"), replace(a, b))[1])
    with files.staged(tmp_path / "entry") as tmp:
        (tmp / "a").write_text("unsynced")  # written without fsync, as shutil.copy2 does
        (tmp / "b").write_text("unsynced")
    assert seen.index("replace") >= 3  # both files and the folder, before the rename


def test_a_failed_last_rename_puts_the_old_entry_back(tmp_path, monkeypatch):
    from deadwood.storage import files

    final = tmp_path / "entry"
    final.mkdir()
    (final / "a").write_text("old")
    replace = files.os.replace

    def refuse(src, dst):
        if ".entry.tmp-" in str(src):
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError):
        with files.staged(final) as tmp:
            (tmp / "a").write_text("new")
    assert (final / "a").read_text() == "old" and _hidden(tmp_path) == []


# --------------------------------------------------------------------------- damaged cache entries

def _events(config, cache):
    from deadwood import run

    events = []
    loaded = run(config, cache_dir=cache, on_event=events.append)
    return loaded, events


def _damage_teacher(folder, how):
    if how == "truncated dense.pt":
        data = (folder / "dense.pt").read_bytes()
        (folder / "dense.pt").write_bytes(data[:len(data) // 2])
    else:
        (folder / "teacher.json").write_text('{"history": [1, 2')


@pytest.mark.parametrize("how", ["truncated dense.pt", "invalid teacher.json"])
def test_a_damaged_teacher_is_trained_again_and_replaced(tmp_path, how):
    from deadwood.pipeline import Cache
    from conftest import tiny

    cache = tmp_path / "cache"
    _events(tiny(method="magnitude", seed=21), cache)
    folder = Cache(cache).teacher_dir(tiny(seed=21))
    _damage_teacher(folder, how)
    _, events = _events(tiny(method="random", seed=21), cache)
    damaged = [e for e in events if e.kind == "damaged"]
    assert [e.stage for e in damaged] == ["teacher"] and str(folder) in damaged[0].metrics["message"]
    assert any(e.kind == "epoch" and e.stage == "teacher" for e in events)  # trained again
    _, events = _events(tiny(method="magnitude-layerwise", seed=21), cache)
    assert ("cached", "teacher") in [(e.kind, e.stage) for e in events]  # and the entry is sound again
    assert _hidden(folder.parent) == []


def test_a_damaged_teacher_is_one_warning_line_in_the_cli(tmp_path, capsys):
    assert _run_out(tmp_path, tmp_path / "a") == 0
    [folder] = (tmp_path / "cache" / "teachers").iterdir()
    _damage_teacher(folder, "truncated dense.pt")
    capsys.readouterr()
    assert main(["run", "--method", "random", "--cache-dir", str(tmp_path / "cache"), *TINY]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert any("dense.pt is not a plain-tensor checkpoint" in w and w.endswith("computing it again")
               for w in warnings), warnings


def _edit_record(folder, **changes):
    record = json.loads((folder / "record.json").read_text())
    for path, value in changes.items():
        *head, last = path.split("__")
        d = record
        for k in head:
            d = d[k]
        d[int(last) if isinstance(d, list) else last] = value
    (folder / "record.json").write_text(json.dumps(record))


EDITS = [({"clean_accuracy": 0.1234}, "clean_accuracy is 0.1234 but robustness measured"),
         ({"robustness__accuracy__0": 0.5}, "robustness: accuracy at epsilon 0 (0.5000) differs from its clean"),
         ({"teacher__clean_accuracy": 0.1234}, "teacher.clean_accuracy is 0.1234 but teacher.robustness measured"),
         ({"global_sparsity": 1.5}, "global_sparsity is 1.5, not a number in [0, 1]"),
         ({"one_shot_accuracy": -0.1}, "one_shot_accuracy is -0.1, not a number in [0, 1]"),
         ({"robustness__accuracy__1": 2.0}, "robustness holds accuracies that are not numbers in [0, 1]")]


@pytest.mark.parametrize("edit,message", EDITS)
def test_an_edited_record_contradicts_itself_and_is_refused(tmp_path, capsys, edit, message):
    out = tmp_path / "run"
    assert _run_out(tmp_path, out) == 0
    _edit_record(out, **edit)
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 2
    err = _one_line_error(capsys)
    assert f"{out / 'record.json'} contradicts itself: {message}" in err


@pytest.mark.parametrize("damage", ["invalid json", "clean_accuracy 0.1234", "truncated model.pt"])
def test_a_damaged_cached_run_is_never_served_but_computed_again(tmp_path, damage):
    from deadwood.pipeline import Cache
    from conftest import tiny

    config, cache = tiny(method="magnitude", seed=22), Cache(tmp_path / "cache")
    first, _ = _events(config, cache.root)
    folder = cache.run_dir(config)
    if damage == "invalid json":
        (folder / "record.json").write_text("{not json")
    elif damage == "clean_accuracy 0.1234":
        _edit_record(folder, clean_accuracy=0.1234)
    else:
        (folder / "model.pt").write_bytes((folder / "model.pt").read_bytes()[:1000])
    loaded, why = cache.load(config)
    assert loaded is None and str(folder) in why
    assert cache.has_run(config) is (damage == "truncated model.pt")  # has_run reads no model
    again, events = _events(config, cache.root)
    assert [(e.kind, e.stage) for e in events if e.kind in ("damaged", "cached")] == [
        ("damaged", "run"), ("cached", "teacher")]
    assert again.record.clean_accuracy == first.record.clean_accuracy  # recomputed, same numbers
    loaded, why = cache.load(config)
    assert why is None and loaded.record.to_dict() == again.record.to_dict()
    assert _hidden(folder.parent) == []


def test_loading_an_absent_run_is_none_without_damage(tmp_path):
    from deadwood.pipeline import Cache
    from conftest import tiny

    cache = Cache(tmp_path / "nothing")
    assert cache.load(tiny()) == (None, None) and not cache.has_run(tiny())


def test_a_run_directory_is_recognised_exactly(tmp_path):
    from deadwood.storage.record import is_run_dir

    run_dir = tmp_path / "run"
    assert _run_out(tmp_path, run_dir) == 0
    assert is_run_dir(run_dir)
    (run_dir / ".record.json.abc123.tmp").write_text("{")  # an interrupted atomic write: still ours
    assert is_run_dir(run_dir)
    (run_dir / "notes.txt").write_text("mine")
    assert not is_run_dir(run_dir)
    (run_dir / "notes.txt").unlink()
    (run_dir / "record.json").write_text('{"config": {}}')  # not a run record
    assert not is_run_dir(run_dir) and not is_run_dir(tmp_path / "absent")
