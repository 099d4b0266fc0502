"""A torchvision architecture, an image folder and a checkpoint of the user's, from the CLI; and cache
keys that tell data apart by content, never by name or path."""
import shutil

import pytest
import torch

from deadwood import RunConfig, TeacherConfig
from deadwood.cli import main
from deadwood.models.zoo import build_torchvision
from fakedata import write_mnist
from test_image_folder import make_tree

ARCH = "shufflenet_v2_x0_5"  # small and quick on a CPU, with depthwise convolutions and BatchNorm
QUICK = ["--finetune-epochs", "1", "--evaluation-samples", "9", "--evaluation-steps", "2",
         "--evaluation-epsilons", "0", "0.1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for split, n in (("train", 6), ("test", 3)):
        make_tree(root / split, per_class=n)
    return root


def _run(tmp_path, *args):
    return main(["run", "--dataset", "folder", "--image-size", "16", "--model", f"torchvision:{ARCH}",
                 "--method", "magnitude", "--sparsity", "0.5", "--cache-dir", str(tmp_path / "cache"), *QUICK, *args])


def test_torchvision_model_on_an_image_folder_with_a_checkpoint(folder, tmp_path, capsys):
    torch.manual_seed(0)
    given = build_torchvision(ARCH, (3, 16, 16), 3)
    torch.save(given.state_dict(), tmp_path / "teacher.pt")
    assert _run(tmp_path, "--data-dir", str(folder), "--teacher-checkpoint", str(tmp_path / "teacher.pt")) == 0
    out = capsys.readouterr().out
    run_dir = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    from deadwood import load_run

    loaded = load_run(run_dir)
    assert loaded.config.teacher.epochs == 0  # a checkpoint is the teacher as given
    dense = loaded.dense()
    assert all(torch.equal(v, dense.state_dict()[k]) for k, v in given.state_dict().items())
    assert loaded.record.global_sparsity == pytest.approx(0.5, abs=1e-3)
    assert loaded.record.config["model"] == f"torchvision:{ARCH}"


def test_a_checkpoint_of_another_architecture_names_the_keys_and_writes_nothing(folder, tmp_path, capsys):
    torch.save(build_torchvision("resnet18", (3, 16, 16), 3).state_dict(), tmp_path / "other.pt")
    assert _run(tmp_path, "--data-dir", str(folder), "--teacher-checkpoint", str(tmp_path / "other.pt")) != 0
    err = capsys.readouterr().err
    assert "missing key" in err and "unexpected key" in err and "conv1.weight" in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


@pytest.mark.parametrize("problem, words", [
    ("absent", "does not exist"), ("one class", "at least two class folders"), ("empty class", "no images"), ("unreadable", "broken.png")])
def test_bad_image_folders_are_one_line_errors(problem, words, tmp_path, capsys):
    root = tmp_path / "photos"
    if problem != "absent":
        make_tree(root, per_class=4, classes={"cat": 0} if problem == "one class" else {"cat": 0, "dog": 1})
    if problem == "empty class":
        (root / "eel").mkdir()
    if problem == "unreadable":
        (root / "dog" / "broken.png").write_bytes(b"not an image")
    assert _run(tmp_path, "--data-dir", str(root)) != 0
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


def test_keys_follow_the_data_not_its_name_or_place(tmp_path):
    a, b, c = (make_tree(tmp_path / w / "mnist", per_class=3) for w in "abc")
    (c / "cat" / "00.png").unlink()  # c: a folder of the same name, other images
    shutil.copy(c / "cat" / "01.png", c / "cat" / "00.png")
    key = {w: RunConfig(dataset="folder", data_dir=str(p), image_size=8).key() for w, p in zip("abc", (a, b, c))}
    assert key["a"] == key["b"]  # the same images in two places share cached runs
    assert key["a"] != key["c"]  # two folders called "mnist" with other images do not
    teacher = {w: RunConfig(dataset="folder", data_dir=str(p), image_size=8).teacher_key() for w, p in zip("ac", (a, c))}
    assert teacher["a"] != teacher["c"]


def test_keys_of_torchvision_sets_hash_their_files(tmp_path):
    one, two, other = (write_mnist(tmp_path / w, seed=s) for w, s in (("one", 0), ("two", 0), ("three", 1)))
    keys = [RunConfig(dataset="mnist", data_dir=str(p)).key() for p in (one, two, other)]
    assert keys[0] == keys[1] != keys[2]
    absent = RunConfig(dataset="mnist", data_dir=str(tmp_path / "nowhere")).key()  # a key, not an error: the
    assert absent not in keys  # run says what is missing when it loads the files


def test_keys_hold_the_checkpoint_by_content(tmp_path):
    torch.manual_seed(0)
    model = build_torchvision(ARCH, (3, 16, 16), 3)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    shutil.copy(tmp_path / "a.pt", tmp_path / "copy.pt")
    with torch.no_grad():
        model.fc.bias += 1
    torch.save(model.state_dict(), tmp_path / "b.pt")
    base = dict(dataset="digits", model=f"torchvision:{ARCH}", teacher=TeacherConfig(epochs=0))
    keys = [RunConfig(**base, teacher_checkpoint=str(tmp_path / f)).teacher_key() for f in ("a.pt", "copy.pt", "b.pt")]
    assert keys[0] == keys[1] != keys[2]
    assert RunConfig(**base).teacher_key() not in keys
