"""The named datasets: embedded ``digits`` (scikit-learn) and ``moons`` (generated), which need no
files, and MNIST, Fashion-MNIST, CIFAR-10 and SVHN, read from torchvision's file layout under
``data_dir`` and never downloaded unless asked. Each is one registry entry of fixed shape and classes.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DatasetFileError, DatasetNotFound
from .registry import DatasetInfo, embedded_datasets, read_once


def _stratified(x: np.ndarray, y: np.ndarray, split: str, seed: int, test_size: float = 0.2):
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    return (xtr, ytr) if split == "train" else (xte, yte)


def _load_digits(info, split, data_dir, seed, download):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return _stratified(x, d.target.astype(np.int64), split, seed)


MOONS_SAMPLES = 1000
MOONS_NOISE = 0.2
# Fixed affine map from make_moons' natural range into the unit square, so the
# plane the 2-D views draw is the same for every seed.
_MOONS_LOW = np.array([-1.75, -1.25], dtype=np.float32)
_MOONS_SPAN = np.array([4.5, 3.0], dtype=np.float32)


def moons_to_unit(points: np.ndarray) -> np.ndarray:
    """Map raw ``make_moons`` coordinates into [0, 1]^2 (clipped at the edges)."""
    return np.clip((points - _MOONS_LOW) / _MOONS_SPAN, 0.0, 1.0).astype(np.float32)


def _load_moons(info, split, data_dir, seed, download):
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=MOONS_SAMPLES, noise=MOONS_NOISE, random_state=seed)
    return _stratified(moons_to_unit(x.astype(np.float32)), y.astype(np.int64), split, seed)


def _require_dir(info: DatasetInfo, data_dir) -> Path:
    if data_dir is None:
        raise DatasetNotFound(
            f"dataset '{info.name}' needs --data-dir: a folder holding {', '.join(info.files)} "
            f"(torchvision's layout); the embedded datasets are {', '.join(embedded_datasets())}")
    return Path(data_dir).expanduser()


def _missing(info: DatasetInfo, root: Path) -> DatasetNotFound:
    absent = [f for f in info.files if not (root / f).exists()]
    return DatasetNotFound(
        f"dataset '{info.name}' not found in {root.resolve()}: expected {', '.join(info.files)}"
        + (f" (missing: {', '.join(absent)})" if absent else "")
        + "; put the files there in torchvision's layout, or pass --download where the network allows")


def _torchvision(factory: Callable):
    """Wrap a torchvision loader: translate "not found" into DatasetNotFound, and files that are
    there but unreadable into DatasetFileError."""

    def load(info, split, data_dir, seed, download):
        root = _require_dir(info, data_dir)
        if not download and any(not (root / f).exists() for f in info.files):
            raise _missing(info, root)
        try:
            x, y = factory(str(root), split == "train", download)
        except DatasetFileError:
            raise
        except (RuntimeError, FileNotFoundError, OSError, pickle.UnpicklingError, KeyError, ValueError,
                AssertionError, IndexError, TypeError, EOFError) as e:
            if any(not (root / f).exists() for f in info.files):
                raise _missing(info, root) from e
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatasetFileError(f"dataset '{info.name}' in {root.resolve()} could not be read: {first}") from e
        return x, y

    return load


@contextlib.contextmanager
def _naming(path: Path, what: str):
    """Turn a failure to parse ``path`` into a DatasetFileError that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError, AttributeError,
            IndexError, AssertionError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetFileError(f"{what}: {path} could not be read: {first}") from e


def _mnist_like(cls_name):
    """MNIST and Fashion-MNIST from ``<root>/<cls_name>/raw``, read by :func:`read_idx` (torchvision
    only downloads): a garbage file is named with what is wrong with it, not met by an assert."""

    def factory(root, train, download):
        import torchvision

        raw = Path(root) / cls_name / "raw"
        prefix = "train" if train else "t10k"
        images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
        if download and not (images.is_file() and labels.is_file()):
            getattr(torchvision.datasets, cls_name)(root=root, train=train, download=True)
        x, y = read_idx(images, _IDX_IMAGES, (28, 28)), read_idx(labels, _IDX_LABELS, ())
        if len(x) != len(y):
            raise DatasetFileError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
        if len(y) and int(y.max()) > 9:
            raise DatasetFileError(f"{labels} holds the label {int(y.max())}; MNIST labels are 0 to 9")
        return x.astype(np.float32)[:, None] / 255.0, y.astype(np.int64)

    return factory


_IDX_IMAGES, _IDX_LABELS = 2051, 2049  # IDX magic numbers: unsigned bytes, 3 and 1 dimensions


def read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): a big-endian header ``magic, n, *item_shape``,
    then ``n·prod(item_shape)`` bytes. Raises :class:`DatasetFileError` naming the file and what is
    wrong with it."""
    kind = "image" if item_shape else "label"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DatasetFileError(f"{path} could not be read: {e.strerror or e}") from None
    header = 4 * (2 + len(item_shape))
    if len(data) < header:
        raise DatasetFileError(f"{path} is not an MNIST {kind} file: it holds {len(data)} bytes, "
                               f"fewer than its {header}-byte header")
    found, n, *shape = struct.unpack(f">{2 + len(item_shape)}I", data[:header])
    if found != magic:
        raise DatasetFileError(f"{path} is not an MNIST {kind} file: it starts with {found:#010x}, "
                               f"expected {magic:#010x}")
    if tuple(shape) != item_shape:
        raise DatasetFileError(f"{path} holds {kind}s of shape {tuple(shape)}, expected {item_shape}")
    size = header + n * int(np.prod(item_shape, dtype=np.int64))
    if len(data) != size:
        raise DatasetFileError(f"{path} is damaged: its header announces {n} {kind}s ({size} bytes), "
                               f"the file holds {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(n, *item_shape)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")
        return super().find_class(module, name)


def _cifar10(root, train, download):
    """CIFAR-10 in torchvision's layout (``cifar-10-batches-py``), read with a restricted unpickler.

    torchvision's own reader calls ``pickle.load`` on the batch files; we only ever
    unpickle arrays. With ``download`` torchvision fetches the files first.
    """
    import torchvision

    folder = Path(root) / "cifar-10-batches-py"
    if download:
        torchvision.datasets.CIFAR10(root=root, train=train, download=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    xs, ys = [], []
    for name in names:
        with _naming(folder / name, "dataset 'cifar10'"), open(folder / name, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.extend(entry.get("labels", entry.get("fine_labels", [])))
    return np.concatenate(xs).astype(np.float32) / 255.0, np.asarray(ys, dtype=np.int64)


def _svhn(root, train, download):
    import torchvision

    class SVHN(torchvision.datasets.SVHN):
        def _check_integrity(self) -> bool:  # presence only, as for CIFAR-10
            return os.path.exists(os.path.join(self.root, self.filename))

    split = "train" if train else "test"
    with _naming(Path(root) / f"{split}_32x32.mat", "dataset 'svhn'"):
        ds = SVHN(root=root, split=split, download=download)
    return ds.data.astype(np.float32) / 255.0, np.asarray(ds.labels, dtype=np.int64)


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_SETS: dict[str, tuple[DatasetInfo, Callable]] = {
    "digits": (DatasetInfo("digits", (1, 8, 8), 10, (0.3,), (0.38,), True,
                           classes=tuple(str(i) for i in range(10))), _load_digits),
    "moons": (DatasetInfo("moons", (2,), 2, (0.5, 0.5), (0.25, 0.25), True,
                          classes=("upper", "lower")), _load_moons),
    "mnist": (DatasetInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), False,
                          files=tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),
                          classes=tuple(str(i) for i in range(10))),
              _torchvision(_mnist_like("MNIST"))),
    "fashion-mnist": (DatasetInfo("fashion-mnist", (1, 28, 28), 10, (0.2860,), (0.3530,), False,
                                  files=tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),
                                  classes=("t-shirt", "trouser", "pullover", "dress", "coat",
                                           "sandal", "shirt", "sneaker", "bag", "boot")),
                      _torchvision(_mnist_like("FashionMNIST"))),
    "cifar10": (DatasetInfo("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                            False, files=tuple(f"cifar-10-batches-py/{f}" for f in
                                               [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
                            classes=("airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck")),
                _torchvision(_cifar10)),
    "svhn": (DatasetInfo("svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), False,
                         files=("train_32x32.mat", "test_32x32.mat"),
                         classes=tuple(str(i) for i in range(10))), _torchvision(_svhn)),
}


@dataclass(frozen=True)
class NamedDataset:
    """A registry entry of fixed facts: ``static`` its info, ``loader(info, split, data_dir, seed,
    download)`` its numpy ``(x, y)``."""

    static: DatasetInfo
    loader: Callable

    @property
    def embedded(self) -> bool:
        return self.static.embedded

    def known(self, name: str) -> None:
        return None

    def info(self, name: str, data_dir=None, image_size: int = 32) -> DatasetInfo:
        return self.static

    def digest(self, name: str, data_dir=None, seed: int = 0, image_size: int = 32) -> str:
        """The embedded sets, which are generated: their generator (name, seed, scikit-learn's
        version; the generating code is in the code fingerprint). The others: a hash of their files,
        or, when one is absent, a key no computed run can have (loading them says what is missing)."""
        if self.embedded:
            from importlib.metadata import version

            return f"{name}:seed={seed}:scikit-learn={version('scikit-learn')}"
        from .digest import file_digest

        root = Path(data_dir).expanduser() if data_dir is not None else None
        if root is None or any(not (root / f).is_file() for f in self.static.files):
            return f"{name}:absent"
        h = hashlib.sha256(name.encode())
        for f in self.static.files:
            h.update(f"{f}={file_digest(root / f)}".encode())
        return f"{name}:{h.hexdigest()[:16]}"

    def load(self, name: str, split: str, data_dir=None, seed: int = 0, download: bool = False,
             image_size: int = 32):
        """Read once per process and folder; ``seed`` splits the embedded sets only (the others
        come with their own split)."""
        key = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
        return read_once(self._read, split, key, seed if self.embedded else 0, download)

    def _read(self, split, data_dir, seed, download):
        return self.loader(self.static, split, data_dir, seed, download)


NAMED: dict[str, NamedDataset] = {name: NamedDataset(info, loader) for name, (info, loader) in _SETS.items()}
