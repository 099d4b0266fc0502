"""Models: the model registry (mlp, lenet5, convnet, vgg, resnet20), torchvision builds, the user's
registered networks with their input normalisation, and checkpoint loading (one weights-only
loader for every file this project reads).

May import: ``deadwood.data``, ``deadwood.pruning`` (which layers are prunable), ``deadwood.errors``.
"""
