"""The four lenses of "Inside the network" (:mod:`deadwood.analysis`), computed over finished
(cached) runs and memoised.

Every function takes configurations as JSON text (hashable, so Streamlit's cache keys
on the whole configuration) and reads runs from the engine's cache; the page calls them
only once :func:`missing` says nothing is left to run.
"""
from __future__ import annotations

import json
from typing import Sequence

import streamlit as st

import deadwood
from deadwood.analysis import (bound_curve, distortion_sweep, linear_regions_2d, linear_shapes, mask_matrices,
                               model_region_bound, record_distortion, similarity_study)
from deadwood.pruning.region_bound import log10
from deadwood.errors import RunFileError

from . import runs

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


@st.cache_data(show_spinner="Counting linear regions...", max_entries=16)
def regions(config_text: str, resolution: int = REGION_RESOLUTION) -> dict:
    """Region maps and rank-aware bounds of the run's dense teacher and pruned model."""
    loaded = _loaded(_config(config_text))
    dense, pruned = loaded.dense(), loaded.model
    return {"dense": linear_regions_2d(dense, resolution=resolution),
            "pruned": linear_regions_2d(pruned, resolution=resolution),
            "bounds": [log10(model_region_bound(m)) for m in (dense, pruned)]}


@st.cache_data(show_spinner="Sampling random sparse matrices for the bound...", max_entries=16)
def bound_rows(config_text: str, sparsities: tuple[float, ...]) -> list[dict]:
    """Cai et al.'s expected bound against sparsity for the configuration's MLP."""
    config = _config(config_text)
    model = deadwood.model_for(config)
    return bound_curve(linear_shapes(model), sparsities, min_keep=config.min_keep,
                       samples=config.cut.bound_samples, seed=config.seed)


@st.cache_data(show_spinner="Comparing layers with SVCCA (and training the reference models)...", max_entries=8)
def similarity(config_text: str, methods: tuple[str, ...]) -> dict:
    return similarity_study(_config(config_text), methods)


@st.cache_data(show_spinner="Reading per-class recall from the run records...", max_entries=8)
def distortion(config_text: str, methods: tuple[str, ...], sparsities: tuple[float, ...]) -> list[dict]:
    return distortion_sweep(_config(config_text), methods, sparsities)


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
