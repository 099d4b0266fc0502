"""Data: the dataset registry, the named datasets (embedded digits and moons, MNIST-like files,
CIFAR-10, SVHN), image folders, arrays handed to ``deadwood.prune``, and digests of content.

Owns: :class:`ArrayDataset`, ``batches``, ``dataset_info``, ``load_split``, ``data_digest``.
May import: ``deadwood.errors`` only. Everything else in the engine builds on it.
"""
