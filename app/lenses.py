"""The four lenses of "Inside the network" (:mod:`deadwood.analysis`) over finished (cached) runs.

The lenses that compute (linear regions, representations, recall distortion) are analysis jobs
(:mod:`app.jobs.analysis`): the functions here only name them, and :mod:`app.computed` serves
or starts them. The block-structure lens reads a saved mask, memoised; it takes its configuration
as JSON text (hashable, so Streamlit's cache keys on the whole configuration). The page asks for
any of them only once :func:`missing` says nothing is left to run.
"""
from __future__ import annotations

import json
from typing import Sequence

import streamlit as st

import deadwood
from deadwood.analysis import Regions, mask_matrices, record_distortion
from deadwood.errors import RunFileError

from . import runs
from .jobs import Analysis

REGION_RESOLUTION = 300  # grid points per side of the region maps


def as_text(config: deadwood.RunConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def _config(text: str) -> deadwood.RunConfig:
    return deadwood.RunConfig.from_dict(json.loads(text))


def _loaded(config: deadwood.RunConfig):
    return runs.loaded(config)


def missing(configs: Sequence[deadwood.RunConfig]) -> list[deadwood.RunConfig]:
    """The configurations whose runs are not in the cache yet, or whose cache entry is damaged."""
    return [c for c in configs if runs.record(c) is None]


def regions(config: deadwood.RunConfig, bound_config: deadwood.RunConfig, sparsities: Sequence[float]) -> Analysis:
    """The linear-regions lens's job: region maps and rank-aware bounds of ``config``'s dense teacher and
    pruned model, and Cai et al.'s expected bound against ``sparsities`` for ``bound_config``'s MLP."""
    return Analysis.of("regions", {"config": config, "bound_config": bound_config, "sparsities": list(sparsities),
                                   "resolution": REGION_RESOLUTION}, label="the linear regions and their bound")


def region_maps(result: dict) -> dict:
    """A regions job's result with its two maps as :class:`deadwood.analysis.Regions`."""
    return {**result, **{k: Regions(**result[k]) for k in ("dense", "pruned")}}


def similarity(config: deadwood.RunConfig, methods: Sequence[str]) -> Analysis:
    """The representations lens's job: SVCCA of each method's layers to the teacher's, with the references."""
    return Analysis.of("similarity", {"config": config, "methods": list(methods)},
                       label="SVCCA against the teacher (training the reference models)")


def distortion(config: deadwood.RunConfig, methods: Sequence[str], sparsities: Sequence[float]) -> Analysis:
    """The recall-distortion lens's job: α of every method at every sparsity, from the run records."""
    return Analysis.of("distortion", {"config": config, "methods": list(methods), "sparsities": list(sparsities)},
                       label="recall distortion from the run records")


def balances(config: deadwood.RunConfig) -> dict:
    """Per-class balances of one run's teacher and pruned model, from its record."""
    record = runs.record(config)  # the record alone: no model is loaded
    if record is None:
        raise RunFileError(runs.damaged(config) or "this configuration has not been run yet")
    return record_distortion(record)


@st.cache_data(max_entries=16)
def saved_masks(config_text: str) -> dict:
    """The mask the run's saved model carries, per layer in GEMM form."""
    return mask_matrices(deadwood.Mask.from_model(_loaded(_config(config_text)).model))
