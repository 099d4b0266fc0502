"""Pruning: masks (a checked type, computed apart from applied), the single cut and its per-layer
allocations (global, uniform, the linear-region bound), block-row-column (BCR) granularity, the
dead wood, and the one-shot sparsity profile at every κ.

May import: ``deadwood.data``, ``deadwood.robustness`` (the profile measures accuracy under
attack), ``deadwood.errors``.
"""
