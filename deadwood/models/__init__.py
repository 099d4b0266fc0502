"""Models: the model registry (``registry``: named entries and the ``torchvision:`` and ``user:``
prefixes, each with its name check, fit check and build), the registry's own networks (``networks``:
mlp, lenet5, convnet, vgg, resnet20), torchvision builds (``zoo``), the user's registered networks
with their input normalisation (``user``), and checkpoint loading (``checkpoint``: one weights-only
loader for every file this project reads).

May import: ``deadwood.data``, ``deadwood.pruning`` (which layers are prunable), ``deadwood.errors``.
"""
