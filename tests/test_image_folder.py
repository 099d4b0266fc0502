"""Image folders: both layouts, the seeded split, the digest, and a clear error for each bad folder."""
import shutil

import numpy as np
import pytest
from PIL import Image

from deadwood.data import image_folder
from deadwood.errors import ConfigError, DatasetFileError, DatasetNotFound
from deadwood.data.image_folder import digest, read, scan

# class k is pure colour k (red, green, blue): the label can be read back from the pixels
COLOURS = {"cat": 0, "dog": 1, "eel": 2}


def draw(path, channel, shade, size=12, fmt=None):
    """A solid image, ``shade`` (0-255) in one channel; the shade tells files of one class apart."""
    pixel = [0, 0, 0]
    pixel[channel] = shade
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), tuple(pixel)).save(path, format=fmt)


def make_tree(top, per_class=8, classes=COLOURS):
    for name, channel in classes.items():
        for i in range(per_class):
            ext = "jpg" if i % 4 == 3 else "png"  # a mix, as real folders are
            draw(top / name / f"{i:02d}.{ext}", channel, 255 - 10 * i)
    return top


def test_one_tree_is_split_per_class(tmp_path):
    root = make_tree(tmp_path / "photos")
    layout = scan(root, seed=0)
    assert layout.classes == ("cat", "dog", "eel") and layout.seed == 0
    for label in range(3):
        assert sum(lab == label for _, lab in layout.test) == 2   # round(0.2 * 8)
        assert sum(lab == label for _, lab in layout.train) == 6
    paths = [p for p, _ in layout.train + layout.test]
    assert len(set(paths)) == 24 and all(p.split("/")[0] == layout.classes[lab]
                                         for p, lab in layout.train + layout.test)

    x, y, classes = read(root, "train", image_size=8)
    assert classes == ("cat", "dog", "eel")
    assert x.shape == (18, 3, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == pytest.approx(1.0)
    assert (x.mean(axis=(2, 3)).argmax(axis=1) == y).all()      # every label matches its pixels
    x_test, y_test, _ = read(root, "test", image_size=8)
    assert x_test.shape == (6, 3, 8, 8) and np.bincount(y_test).tolist() == [2, 2, 2]


def test_png_values_are_exact(tmp_path):
    root = tmp_path / "exact"
    draw(root / "a" / "0.png", 0, 51)
    draw(root / "a" / "1.png", 0, 51)
    draw(root / "b" / "0.png", 2, 204)
    draw(root / "b" / "1.png", 2, 204)
    x, y, _ = read(root, "train", image_size=5)
    assert x.shape == (2, 3, 5, 5)
    assert np.allclose(x[y == 0][:, 0], 0.2) and np.allclose(x[y == 1][:, 2], 0.8)
    assert np.allclose(x[:, 1], 0.0)


def test_seed_split_is_deterministic(tmp_path):
    root = make_tree(tmp_path / "photos")
    assert scan(root, seed=0) == scan(root, seed=0)
    assert set(scan(root, seed=0).test) != set(scan(root, seed=1).test)
    a, ya, _ = read(root, "test", 6, seed=3)
    b, yb, _ = read(root, "test", 6, seed=3)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)


def test_small_classes_keep_a_train_image(tmp_path):
    root = make_tree(tmp_path / "few", per_class=2, classes={"a": 0, "b": 1})
    draw(root / "c" / "only.png", 2, 255)
    layout = scan(root)
    counts = {name: [sum(lab == k for _, lab in split) for split in (layout.train, layout.test)]
              for k, name in enumerate(layout.classes)}
    assert counts == {"a": [1, 1], "b": [1, 1], "c": [1, 0]}


def test_train_and_test_folders_give_the_split(tmp_path):
    root = tmp_path / "split"
    make_tree(root / "train", per_class=4)
    make_tree(root / "test", per_class=2)
    layout = scan(root, seed=5)
    assert layout.seed is None and layout.classes == ("cat", "dog", "eel")
    assert all(p.startswith("test/") for p, _ in layout.test) and len(layout.test) == 6
    assert scan(root, seed=6) == layout
    x, y, _ = read(root, "test", 4)
    assert x.shape == (6, 3, 4, 4) and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert (x.mean(axis=(2, 3)).argmax(axis=1) == y).all()


def test_hidden_and_non_image_files_are_skipped(tmp_path):
    root = make_tree(tmp_path / "photos", per_class=3)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "cat" / "._00.png").write_bytes(b"resource fork, not a png")
    draw(root / "cat" / ".thumbs" / "t.png", 0, 255)
    draw(root / ".trash" / "x.png", 1, 255)   # a hidden folder is not a class
    draw(root / "dog" / "nested" / "deep.PNG", 1, 255)  # torchvision walks class folders, any case
    layout = scan(root)
    assert layout.classes == ("cat", "dog", "eel")
    paths = {p for p, _ in layout.train + layout.test}
    assert len(paths) == 10 and "dog/nested/deep.PNG" in paths
    read(root, "train", 4)  # none of the junk is opened


def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(DatasetNotFound, match=r"image folder .*nowhere does not exist"):
        scan(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetNotFound, match=r"file\.png is not a folder"):
        read(tmp_path / "file.png", "train", 8)


def test_one_class_is_refused(tmp_path):
    root = make_tree(tmp_path / "mono", per_class=3, classes={"cat": 0})
    with pytest.raises(DatasetFileError, match=r"mono needs at least two class folders \(found only 'cat'\)"):
        scan(root)


def test_empty_class_is_named(tmp_path):
    root = make_tree(tmp_path / "photos", per_class=3)
    (root / "fox").mkdir()
    (root / "fox" / "readme.txt").write_text("no images yet")
    with pytest.raises(DatasetNotFound, match=r"class folder .*photos/fox holds no images"):
        scan(root)


def test_train_and_test_with_different_classes(tmp_path):
    root = tmp_path / "split"
    make_tree(root / "train", per_class=2)
    make_tree(root / "test", per_class=1, classes={"cat": 0, "dog": 1, "fox": 2})
    with pytest.raises(DatasetFileError, match=r"different classes \(only in train/: eel; only in test/: fox\)"):
        scan(root)


def test_only_a_train_folder(tmp_path):
    make_tree(tmp_path / "half" / "train", per_class=2)
    with pytest.raises(DatasetNotFound, match=r"has train/ but no test/"):
        scan(tmp_path / "half")


def test_unreadable_images_are_named(tmp_path):
    root = make_tree(tmp_path / "photos", per_class=12)
    good = (root / "cat" / "00.png").read_bytes()
    (root / "cat" / "00.png").write_bytes(good[: len(good) // 2])          # truncated
    for i in range(1, 8):
        (root / "dog" / f"{i:02d}.png").write_bytes(b"this is not a png at all")
    # all 8 bad files are in one split only under the folder layout; use it to know which
    split = root.parent / "split"
    shutil.copytree(root, split / "train")
    make_tree(split / "test", per_class=1)
    with pytest.raises(DatasetFileError) as info:
        read(split, "train", 8)
    message = str(info.value)
    assert "8 image file(s) could not be read" in message and "and 3 more" in message
    assert "train/cat/00.png" in message and "train/dog/01.png" in message and "\n" not in message
    read(split, "test", 8)  # the test split's files are fine


def test_bad_split_and_size(tmp_path):
    root = make_tree(tmp_path / "photos", per_class=2)
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        read(root, "val", 8)
    with pytest.raises(ConfigError, match="image_size"):
        read(root, "train", 0)


def test_digest_follows_the_data_not_the_place(tmp_path):
    root = make_tree(tmp_path / "a", per_class=3)
    same = tmp_path / "elsewhere" / "mnist"
    shutil.copytree(root, same)
    assert digest(root) == digest(same) and len(digest(root)) == 16

    changed = tmp_path / "changed"
    shutil.copytree(root, changed)
    img = Image.open(changed / "dog" / "01.png").convert("RGB")
    img.putpixel((3, 4), (0, 244, 1))
    img.save(changed / "dog" / "01.png")
    assert digest(changed) != digest(root)

    renamed = tmp_path / "renamed"
    shutil.copytree(root, renamed)
    (renamed / "dog").rename(renamed / "wolf")   # same bytes, another class name
    assert digest(renamed) != digest(root)


def test_digest_is_memoised_and_sees_changes(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "photos", per_class=3)
    first = digest(root)
    hashed = []
    real = image_folder._hash_bytes
    monkeypatch.setattr(image_folder, "_hash_bytes", lambda path: hashed.append(path) or real(path))
    assert digest(root) == first and hashed == []          # second call: stats only
    with open(root / "eel" / "02.png", "ab") as f:           # a longer file: size and mtime change
        f.write(b"\0")
    assert digest(root) != first and [p.name for p in hashed] == ["02.png"]
