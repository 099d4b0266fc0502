"""Lenses from related work on pruning: what pruning changed inside the network.

- :mod:`.linear_regions`: linear regions over a 2-D input plane; Cai et al.'s bound on their
  number as a function of per-layer density lives in the core (:mod:`deadwood.pruning.region_bound`,
  since the cut's 'bound' allocation uses it) and is re-exported here as a lens;
- :mod:`.similarity`: SVCCA between pruned and dense layers (Raghu et al.; Blakeney et al.);
- :mod:`.recall`: recall distortion and the intensification statistic α (Good et al.);
- :mod:`.block_structure`: block-based column-row masks (GRIM) next to unstructured ones.
"""
from .block_structure import granularity_masks, mask_matrices
from .linear_regions import Plane, Regions, linear_regions_2d, plane_through
from .recall import (distortion_sweep, intensification, per_class_recall, recall_balance, recall_distortion,
                     record_distortion)
from ..pruning.region_bound import (bound_allocation, bound_curve, expected_region_bound, linear_shapes,
                             model_region_bound, region_bound)
from .similarity import layer_similarity, similarity_study, svcca_similarity

__all__ = [
    "linear_regions_2d", "plane_through", "Plane", "Regions", "region_bound", "expected_region_bound",
    "model_region_bound", "bound_allocation", "bound_curve", "linear_shapes", "svcca_similarity", "layer_similarity", "similarity_study",
    "per_class_recall", "recall_balance", "intensification", "recall_distortion", "record_distortion", "distortion_sweep",
    "granularity_masks", "mask_matrices",
]
