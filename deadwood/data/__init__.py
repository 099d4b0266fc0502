"""Data: the dataset registry (``registry``: named and prefixed entries, each with its info, digest
and load), the named datasets (``named``: embedded digits and moons, MNIST-like files, CIFAR-10,
SVHN), image folders (``image_folder``), arrays handed to ``deadwood.prune`` (``arrays``), and
digests of content (``digest``); ``datasets`` puts the entries in the registry and is the way in.

Owns: :class:`ArrayDataset`, ``batches``, ``dataset_info``, ``load_split``, ``data_digest``.
May import: ``deadwood.errors`` only. Everything else in the engine builds on it.
"""

from . import datasets  # noqa: E402,F401  (puts the built-in entries in the registry, whatever is imported first)
