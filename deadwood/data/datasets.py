"""Dataset registry: every dataset is a pair of tensors with inputs in [0, 1].

Embedded sets (``digits`` from scikit-learn, generated ``moons``) need no files.
The torchvision sets read torchvision's own file layout under ``data_dir`` and
never download unless asked. All sets are small enough to sit in memory as one
tensor, which makes an epoch a loop over index slices instead of a DataLoader
(on the embedded data that is several times faster than per-sample collation).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DatasetFileError, DatasetNotFound

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before any file is read."""

    name: str
    input_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for vectors
    num_classes: int
    mean: tuple[float, ...]  # per channel, used by the normalisation layer inside models
    std: tuple[float, ...]
    embedded: bool  # needs no files
    files: tuple[str, ...] = ()  # paths under data_dir that must exist (for error messages)
    classes: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


class ArrayDataset(Dataset):
    """``(x, y)`` pairs held as two tensors; ``x`` in [0, 1], ``y`` int64 class labels."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, info: DatasetInfo, split: str):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} labels")
        self.x, self.y, self.info, self.split = x, y, info, split

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def to(self, device) -> "ArrayDataset":
        return ArrayDataset(self.x.to(device), self.y.to(device), self.info, self.split)

    def subset(self, n: int | None, seed: int = 0) -> "ArrayDataset":
        """The first ``n`` samples of a fixed permutation (all of them when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].to(self.y.device)
        return ArrayDataset(self.x[idx], self.y[idx], self.info, self.split)


def batches(ds: ArrayDataset, batch_size: int, *, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of ``ds`` as tensor slices (on whatever device ``ds`` lives)."""
    n = len(ds)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(ds.y.device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            yield ds.x[idx], ds.y[idx]
    else:
        for i in range(0, n, batch_size):
            yield ds.x[i:i + batch_size], ds.y[i:i + batch_size]


# --------------------------------------------------------------------------- loaders

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

REGISTRY: dict[str, tuple[DatasetInfo, Callable]] = {
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


FOLDER = "folder"  # torchvision's ImageFolder layout under data_dir (deadwood.data.image_folder)
USER = "user:"  # arrays handed to deadwood.prune, registered in this process (register_arrays)
# Photos in a folder are normalised with ImageNet's per-channel statistics (inside the model).
_PHOTO_MEAN, _PHOTO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_USER_DATA: dict[str, tuple[DatasetInfo, dict]] = {}


def dataset_names() -> list[str]:
    return [*REGISTRY, FOLDER]


def embedded_datasets() -> list[str]:
    return [n for n, (info, _) in REGISTRY.items() if info.embedded]


def dataset_info(name: str, data_dir=None, image_size: int = 32) -> DatasetInfo:
    """Static facts about a dataset (shape, classes) without reading its data: an image folder
    (``name`` 'folder') is scanned for its classes, at ``image_size``."""
    if name == FOLDER:
        from . import image_folder

        root = _require_folder(data_dir)
        classes = image_folder.scan(root).classes
        return DatasetInfo(FOLDER, (3, image_size, image_size), len(classes), _PHOTO_MEAN, _PHOTO_STD, False,
                           classes=tuple(classes))
    if name.startswith(USER):
        return _user(name)[0]
    try:
        return REGISTRY[name][0]
    except KeyError:
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {', '.join(dataset_names())}") from None


def _require_folder(data_dir) -> Path:
    if data_dir is None:
        raise DatasetNotFound("dataset 'folder' needs --data-dir: a folder in torchvision's ImageFolder layout "
                              "(DIR/train/<class>/*, DIR/test/<class>/*, or DIR/<class>/* split by seed)")
    return Path(data_dir).expanduser()


def _user(name: str):
    try:
        return _USER_DATA[name]
    except KeyError:
        raise ConfigError(f"dataset '{name}' is data handed to deadwood.prune in another process; "
                          "pass it to deadwood.prune again to use it") from None


def register_arrays(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                    classes: tuple[str, ...]) -> str:
    """Register in-memory data (``(x, y)`` per split, checked by the caller) under a name that is a
    digest of its tensors, and return the name: the same data always gets the same name."""
    from .digest import tensors_digest

    parts = {"train x": train[0], "train y": train[1], "test x": test[0], "test y": test[1]}
    name = USER + tensors_digest(repr(classes), parts.items())
    x0 = train[0]
    info = DatasetInfo(name, tuple(x0.shape[1:]), len(classes), (0.0,), (1.0,), True, classes=tuple(classes))
    _USER_DATA[name] = (info, {"train": train, "test": test})
    return name


def data_digest(name: str, data_dir=None, seed: int = 0, image_size: int = 32) -> str:
    """What the data of a run is, by content, for its cache keys: a hash of the files it is read
    from (an image folder: every image's path and bytes; torchvision's sets: their files), the
    digest of arrays handed to deadwood.prune, or for the embedded sets, which are generated,
    their generator (name, seed, scikit-learn's version; the generating code is in the code
    fingerprint). Never the folder's path: the same data in two places share cached runs. Files that
    are absent give a key no computed run can have (the run stops when it loads them)."""
    if name.startswith(USER):
        _user(name)
        return name
    if name == FOLDER:
        from . import image_folder

        return f"folder:{image_folder.digest(_require_folder(data_dir))}:{image_size}"
    info = dataset_info(name)
    if info.embedded:
        from importlib.metadata import version

        return f"{name}:seed={seed}:scikit-learn={version('scikit-learn')}"
    from .digest import file_digest

    root = Path(data_dir).expanduser() if data_dir is not None else None
    if root is None or any(not (root / f).is_file() for f in info.files):
        return f"{name}:absent"  # nothing can be computed without the files; loading them says what is missing
    h = hashlib.sha256(name.encode())
    for f in info.files:
        h.update(f"{f}={file_digest(root / f)}".encode())
    return f"{name}:{h.hexdigest()[:16]}"


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 seed: int = 0, download: bool = False, image_size: int = 32) -> ArrayDataset:
    """Load ``split`` ('train' or 'test') of dataset ``name`` as an :class:`ArrayDataset`.

    ``seed`` fixes the stratified train/test split of the embedded sets and of an image folder
    that is one tree (the torchvision sets come with their own split). Inputs are float32 in
    [0, 1]. Raises :class:`DatasetNotFound` with the expected files when they are absent.
    """
    info = dataset_info(name, data_dir, image_size)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; choose 'train' or 'test'")
    if name.startswith(USER):
        x, y = _user(name)[1][split]
        return ArrayDataset(x, y, info, split)
    if name == FOLDER:
        root = str(_require_folder(data_dir).resolve())
        x, y = _cached_arrays(name, split, root, seed, download, image_size, data_digest(name, root))
        return ArrayDataset(x, y, info, split)
    key = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
    x, y = _cached_arrays(name, split, key, seed if info.embedded else 0, download)
    return ArrayDataset(x, y, info, split)


def load_split(config, split: str) -> ArrayDataset:
    """``split`` of the data a :class:`deadwood.RunConfig` names (its dataset, folder, seed, size)."""
    return load_dataset(config.dataset, split, config.data_dir, config.seed, config.download, config.image_size)


@functools.lru_cache(maxsize=16)
def _cached_arrays(name, split, data_dir, seed, download, image_size=None, digest=None):
    """The arrays of one split, read once per process (a folder's ``digest`` is in the key, so
    changed images are read again)."""
    if name == FOLDER:
        from . import image_folder

        x, y, _ = image_folder.read(data_dir, split, image_size, seed)
    else:
        info, loader = REGISTRY[name]
        x, y = loader(info, split, data_dir, seed, download)
    x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    y = torch.as_tensor(np.ascontiguousarray(y, dtype=np.int64))
    # Read-only views: every caller shares them, nobody may edit them in place.
    return x, y
