"""Image folders in torchvision's ImageFolder layout, read into memory as the engine holds every dataset.

Two layouts are accepted:

- ``DIR/train/<class>/...`` and ``DIR/test/<class>/...``: the folders give the split;
- ``DIR/<class>/...``: one tree, split into train and test by a seed, per class (:data:`TEST_FRACTION`).

Images are the files whose extension torchvision's ImageFolder accepts, at any depth under a class
folder; names starting with a dot (files or folders) are skipped. Classes are the class folders' names,
sorted, and a label is the class's index in that order, as in torchvision.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, DatasetFileError, DatasetNotFound
from .registry import DatasetInfo, read_once

FOLDER = "folder"  # the dataset name of an image folder under data_dir
TEST_FRACTION = 0.2
SPLITS = ("train", "test")
_SHOWN = 5  # files named in one error message

Item = tuple[str, int]  # (path relative to the root, in POSIX form; label)


@dataclass(frozen=True)
class FolderLayout:
    """What :func:`scan` found: the sorted class names and each split's (relative path, label) pairs.

    ``seed`` is the seed of the split, or None when the ``train``/``test`` folders give it."""
    root: str
    classes: tuple[str, ...]
    train: tuple[Item, ...]
    test: tuple[Item, ...]
    seed: int | None

    def items(self, split: str) -> tuple[Item, ...]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
        return self.train if split == "train" else self.test


def scan(root, seed: int = 0) -> FolderLayout:
    """The layout of the image folder at ``root``: its classes and each split's files, nothing read yet.

    In the one-tree layout each class is split on its own, by a permutation drawn from
    ``numpy.random.default_rng([seed, label])``: ``round(0.2 n)`` of its ``n`` images go to test, at least
    one and at most ``n - 1`` when ``n >= 2`` (a class of one image is train only). The same seed gives the
    same split. Raises :class:`DatasetNotFound` when the root, a class folder's images or a split folder
    is missing, :class:`DatasetFileError` for fewer than two classes or splits with different classes.
    """
    base = Path(root).expanduser()
    if not base.exists():
        raise DatasetNotFound(f"image folder {base} does not exist")
    if not base.is_dir():
        raise DatasetNotFound(f"image folder {base} is not a folder")
    has = {s: (base / s).is_dir() for s in SPLITS}
    if any(has.values()) and not all(has.values()):
        there, missing = ("train", "test") if has["train"] else ("test", "train")
        raise DatasetNotFound(f"image folder {base} has {there}/ but no {missing}/: give both, "
                              "or one folder per class and no split folders")
    if all(has.values()):
        train, train_classes = _tree(base, "train")
        test, test_classes = _tree(base, "test")
        if train_classes != test_classes:
            only_train = sorted(set(train_classes) - set(test_classes))
            only_test = sorted(set(test_classes) - set(train_classes))
            parts = ([f"only in train/: {', '.join(only_train)}"] if only_train else []) + \
                    ([f"only in test/: {', '.join(only_test)}"] if only_test else [])
            raise DatasetFileError(f"image folder {base}: train/ and test/ hold different classes "
                                   f"({'; '.join(parts)})")
        return FolderLayout(str(base), train_classes, _label(train, train_classes), _label(test, test_classes), None)
    files, classes = _tree(base, "")
    train_items, test_items = [], []
    for label, name in enumerate(classes):
        paths = files[name]
        n_test = min(max(round(TEST_FRACTION * len(paths)), 1), len(paths) - 1)
        chosen = set(np.random.default_rng([seed, label]).permutation(len(paths))[:n_test].tolist())
        for i, path in enumerate(paths):
            (test_items if i in chosen else train_items).append((path, label))
    return FolderLayout(str(base), classes, tuple(train_items), tuple(test_items), seed)


def read(root, split: str, image_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(x, y, classes)`` for ``split`` of the image folder at ``root``.

    ``x`` is float32 of shape (N, 3, image_size, image_size) in [0, 1]: each image decoded by PIL,
    converted to RGB, resized to a square (aspect ratio not kept) with Pillow's bilinear filter (which
    antialiases when shrinking), then divided by 255. ``y`` is int64 labels, indices into ``classes``.
    Raises :class:`DatasetFileError` naming the split's files that cannot be decoded (every one is tried),
    and whatever :func:`scan` raises.
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ConfigError(f"image_size must be a positive whole number of pixels, not {image_size!r}")
    layout = scan(root, seed)
    items = layout.items(split)
    base = Path(layout.root)
    x = np.empty((len(items), 3, image_size, image_size), dtype=np.float32)
    y = np.fromiter((label for _, label in items), dtype=np.int64, count=len(items))
    bad = []
    for i, (rel, _) in enumerate(items):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's notes on palettes and EXIF are noise here
                with Image.open(base / rel) as img:
                    rgb = img.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
        except Exception as e:  # PIL raises many kinds for a damaged file; each means "cannot be read"
            # PIL repeats the full path in its reason; the message names the file once
            reason = _first_line(e).replace(f"'{base / rel}'", "").replace(str(base / rel), "").strip()
            bad.append(f"{rel} ({reason or type(e).__name__})")
            continue
        x[i] = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
    if bad:
        more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise DatasetFileError(f"image folder {base}: {len(bad)} image file(s) could not be read: "
                               f"{'; '.join(bad[:_SHOWN])}{more}")
    return x, y, layout.classes


# Photos in a folder are normalised with ImageNet's per-channel statistics (inside the model).
_PHOTO_MEAN, _PHOTO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class FolderEntry:
    """The registry entry of dataset ``folder``: the image folder at ``data_dir``, at ``image_size``."""

    embedded = False

    def known(self, name: str) -> None:
        return None

    def info(self, name: str, data_dir=None, image_size: int = 32) -> DatasetInfo:
        """The folder is scanned for its classes; no image is read."""
        classes = scan(_require_folder(data_dir)).classes
        return DatasetInfo(FOLDER, (3, image_size, image_size), len(classes), _PHOTO_MEAN, _PHOTO_STD, False,
                           classes=tuple(classes))

    def digest(self, name: str, data_dir=None, seed: int = 0, image_size: int = 32) -> str:
        """Every image's path and bytes (:func:`digest`), never the folder's place, and the size."""
        return f"folder:{digest(_require_folder(data_dir))}:{image_size}"

    def load(self, name: str, split: str, data_dir=None, seed: int = 0, download: bool = False,
             image_size: int = 32):
        """Read once per process, folder and digest: changed images are read again."""
        root = str(_require_folder(data_dir).resolve())
        return read_once(_read_split, split, root, seed, image_size, self.digest(name, root, seed, image_size))


def _read_split(split, root, seed, image_size, digest):
    x, y, _ = read(root, split, image_size, seed)
    return x, y


def _require_folder(data_dir) -> Path:
    if data_dir is None:
        raise DatasetNotFound("dataset 'folder' needs --data-dir: a folder in torchvision's ImageFolder layout "
                              "(DIR/train/<class>/*, DIR/test/<class>/*, or DIR/<class>/* split by seed)")
    return Path(data_dir).expanduser()


# (absolute path, size, mtime_ns) -> SHA-256 of the file's bytes
_FILE_HASHES: dict[tuple[str, int, int], bytes] = {}


def digest(root) -> str:
    """A fingerprint of the images at ``root``: the first 16 hex digits of SHA-256 over every image
    file's relative path and content hash, in sorted path order.

    It depends on the data only, never on where it lies: the same images in two folders give the same
    digest, and a changed byte gives another. Each file's hash is memoised in this process by (absolute
    path, size, mtime_ns), so a second call only lists and stats the files. (A rewrite that keeps the size
    and lands within the file system's timestamp tick would go unseen, as with ``make``.)
    """
    layout = scan(root)
    base = Path(layout.root).absolute()
    h = hashlib.sha256()
    for rel in sorted(rel for rel, _ in layout.train + layout.test):
        h.update(rel.encode() + b"\0" + _file_hash(base / rel))
    return h.hexdigest()[:16]


def _file_hash(path: Path) -> bytes:
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _FILE_HASHES:
            _FILE_HASHES[key] = _hash_bytes(path)
    except OSError as e:
        raise DatasetFileError(f"{path} could not be read ({e.strerror or e})") from None
    return _FILE_HASHES[key]


def _hash_bytes(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def _tree(base: Path, split: str) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """{class: sorted relative image paths} and the sorted class names under ``base/split``."""
    from torchvision.datasets.folder import IMG_EXTENSIONS  # here: importing torchvision takes seconds

    top = base / split if split else base
    classes = tuple(sorted(p.name for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")))
    where = f"{top}" if split else f"image folder {top}"
    if len(classes) < 2:
        found = f"only '{classes[0]}'" if classes else "none"
        raise DatasetFileError(f"{where} needs at least two class folders (found {found})")
    files = {}
    for name in classes:
        found = []
        for folder, dirs, names in os.walk(top / name, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [Path(folder, f).relative_to(base).as_posix() for f in names
                      if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)]
        if not found:
            raise DatasetNotFound(f"class folder {top / name} holds no images "
                                  f"(looked for {', '.join(IMG_EXTENSIONS)})")
        files[name] = sorted(found)
    return files, classes


def _label(files: dict[str, list[str]], classes: tuple[str, ...]) -> tuple[Item, ...]:
    return tuple((path, label) for label, name in enumerate(classes) for path in files[name])


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
