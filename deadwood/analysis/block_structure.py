"""Block-based column-row structure (GRIM, Niu et al.) next to unstructured masks.

The BCR cut itself lives in :mod:`deadwood.pruning.bcr` (it is a Stage 2 option); this module
holds what the app and the notebook draw: each layer's mask as the matrix its layer
multiplies by, for a BCR and an unstructured cut of the same scores.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from ..pruning.bcr import bcr_cut, gemm_form
from ..pruning.masks import Mask, global_cut, magnitudes


def mask_matrices(mask: Mask) -> dict[str, np.ndarray]:
    """Each layer's mask in GEMM form (``out x in·kh·kw``), 1.0 kept and 0.0 cut."""
    return {n: gemm_form(m.detach().cpu()).float().numpy() for n, m in mask.items()}


def granularity_masks(model: nn.Module, sparsity: float, block: tuple[int, int] = (8, 8),
                      min_keep: int = 0) -> dict[str, Mask]:
    """The global magnitude cut of ``model`` at ``sparsity``, unstructured and BCR."""
    scores = magnitudes(model)
    return {"unstructured": global_cut(scores, sparsity, min_keep)[0],
            "bcr": bcr_cut(scores, sparsity, block, min_keep)[0]}
