"""Sidebar inputs shared by the pages: widgets in, immutable run configurations (or a reason) out.

Widget keys are stable (``dataset``, ``data_dir``, ``image_folder``, ``image_size``, ``model``,
``torchvision_model``, ``teacher_checkpoint``, ``method``, ``sparsity``, ``epsilon``, ``budget``, ``run`` and
the advanced ones in :data:`ADVANCED`) so tests and
scripts can drive them, and their values persist across pages for the session.
Each setting is also bound to the page's address under its key (``?sparsity=0.99&epsilon=0.2``):
a copied link opens the same view, a reload keeps it, and a value the widget cannot take is
named by :func:`app.links.check` before the widget falls back to its default.
Defaults come from :class:`deadwood.RunConfig` itself, so the app and the CLI agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Callable

import streamlit as st
import torch

import deadwood
from deadwood.data.datasets import FOLDER, SPLITS, dataset_info, load_split
from deadwood.methods.deadwooding.multipliers import RULES
from deadwood.models.zoo import TORCHVISION, torchvision_names
from deadwood.config import HARP_LOSSES, HYDRA_SCHEDULES

# The κ slider's stops: spread by what is kept (50 % down to 0.5 %), so 0.9-0.995, where the cliff is,
# has most of the track; each is a point of the sparsity profile's grid, and its label is its exact value
# (the address holds the label: ?sparsity=0.985).
SPARSITY_CHOICES = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.975, 0.98,
                    0.985, 0.99, 0.995)
EPSILON_RANGE = (0.0, 0.3)
SPARSITY_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
DEFAULT_GRID = (0.9, 0.95, 0.98, 0.99)
DEFAULT_METHODS = ("deadwooding", "magnitude")
_KEEP = "session"  # widget values survive page switches
_URL = "query-params"  # and live in the page's address under their key
TORCHVISION_ENTRY = "torchvision…"  # the model menu's entry that reveals torchvision's architectures
DEFAULT_ARCHITECTURE = "resnet18"


@dataclass(frozen=True)
class Field:
    """One input of the "Advanced" section, bound to a (dotted) RunConfig field."""

    key: str
    path: str
    label: str
    help: str = ""
    options: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    fmt: str | None = None
    zero_is_none: bool = False  # 0 in the widget means None in the config ("all")


def devices() -> tuple[str, ...]:
    return ("auto", "cpu", "cuda") if torch.cuda.is_available() else ("auto", "cpu")


ADVANCED = (
    Field("teacher_epochs", "teacher.epochs", "Teacher epochs", "Stage 0: training epochs of the dense teacher",
          minimum=0, maximum=1000, step=1),
    Field("dual_epochs", "deadwooding.epochs", "Dual-solve epochs", "Stage 1 of Deadwooding", minimum=1,
          maximum=1000, step=1),
    Field("hydra_epochs", "hydra.epochs", "HYDRA score epochs",
          "Stage 1 of the HYDRA baseline; 0: as many as the dual solve's ('Dual-solve epochs')",
          minimum=0, maximum=1000, step=1, zero_is_none=True),
    Field("hydra_lr", "hydra.lr", "HYDRA learning rate", "SGD on the scores, the cosine schedule's peak "
          "(the reference's 0.1)", minimum=1e-5, maximum=10.0, step=0.01, fmt="%.4f"),
    Field("hydra_momentum", "hydra.momentum", "HYDRA momentum", "SGD momentum on the scores",
          minimum=0.0, maximum=0.999, step=0.05, fmt="%.3f"),
    Field("hydra_weight_decay", "hydra.weight_decay", "HYDRA weight decay", "on the scores (and BatchNorm's "
          "affine parameters unless frozen)", minimum=0.0, maximum=1.0, step=1e-4, fmt="%.5f"),
    Field("hydra_schedule", "hydra.schedule", "HYDRA learning-rate schedule", "set once per epoch",
          options=HYDRA_SCHEDULES),
    Field("hydra_beta", "hydra.beta", "HYDRA TRADES β", "weight of the KL between clean and adversarial "
          "outputs; 0: clean cross-entropy only", minimum=0.0, maximum=100.0, step=0.5, fmt="%.2f"),
    Field("hydra_attack_steps", "hydra.attack_steps", "HYDRA attack steps", "PGD steps of the TRADES attack",
          minimum=1, maximum=1000, step=1),
    Field("hydra_step_fraction", "hydra.step_fraction", "HYDRA attack step (× ε)",
          "the TRADES attack's step size as a fraction of ε", minimum=0.001, maximum=1.0, step=0.05, fmt="%.3f"),
    Field("hydra_freeze_bn", "hydra.freeze_bn", "HYDRA: freeze BatchNorm",
          "keep BatchNorm's weight and bias as the teacher's (the reference trains them with the scores)"),
    Field("hydra_adam_epochs", "hydra_adam.epochs", "HYDRA-Adam score epochs",
          "Stage 1 of hydra-adam; 0: as many as the dual solve's ('Dual-solve epochs')",
          minimum=0, maximum=1000, step=1, zero_is_none=True),
    Field("hydra_adam_lr", "hydra_adam.lr", "HYDRA-Adam learning rate", "Adam on the scores",
          minimum=1e-5, maximum=10.0, step=0.001, fmt="%.4f"),
    Field("gmp_epochs", "gmp.epochs", "GMP pruning epochs",
          "Stage 1 of gradual magnitude pruning; 0: the dual solve's epochs", minimum=0, maximum=1000, step=1,
          zero_is_none=True),
    Field("gmp_frequency", "gmp.frequency", "GMP: prune every Δt steps",
          "optimiser steps from one pruning step of the cubic schedule to the next", minimum=1, maximum=100000,
          step=1),
    Field("gmp_start", "gmp.start", "GMP schedule start", "the first pruning step, as a fraction of the stage",
          minimum=0.0, maximum=1.0, step=0.05, fmt="%.2f"),
    Field("gmp_end", "gmp.end", "GMP schedule end", "κ is reached at the latest here, as a fraction of the stage",
          minimum=0.0, maximum=1.0, step=0.05, fmt="%.2f"),
    Field("gmp_lr", "gmp.lr", "GMP learning rate", "Adam's step during the gradual pruning; 0: the fine-tune's",
          minimum=0.0, maximum=1.0, step=1e-4, fmt="%.4f", zero_is_none=True),
    Field("harp_epochs", "harp.epochs", "HARP epochs", "Stage 1 of HARP (scores and per-layer rates); "
          "0: as many as the dual solve's ('Dual-solve epochs')", minimum=0, maximum=1000, step=1, zero_is_none=True),
    Field("harp_gamma", "harp.gamma", "HARP budget weight γ",
          "HARP: the budget penalty's weight rises by γ each epoch until the budget is met",
          minimum=1e-4, maximum=100.0, step=0.01, fmt="%.4f"),
    Field("harp_alpha", "harp.alpha", "HARP lowest rate α",
          "HARP: no layer keeps less than α·(1 - sparsity) of its weights while rates are learned",
          minimum=0.0, maximum=0.99, step=0.05, fmt="%.2f"),
    Field("harp_lr", "harp.lr", "HARP learning rate", "HARP: SGD on scores and rates, cosine schedule",
          minimum=1e-5, maximum=10.0, step=0.01, fmt="%.4f"),
    Field("harp_loss", "harp.loss", "HARP loss", "pgd: PGD adversarial training; trades: TRADES with β",
          options=HARP_LOSSES),
    Field("finetune_epochs", "finetune.epochs", "Fine-tune epochs", "Stage 3, shared by every method",
          minimum=0, maximum=1000, step=1),
    Field("keep_dual", "finetune.keep_dual", "Constraints stay on while fine-tuning",
          "Deadwooding only: the multipliers keep rising during Stage 3"),
    Field("dual_update", "deadwooding.dual_update", "Dual update rule",
          "dual-ascent: λ ← max(0, λ + s·mean g⁺) every k steps; the others come from cooper-optim",
          options=RULES),
    Field("dual_step", "deadwooding.dual_step", "Dual step size s", "how far the multipliers rise per epoch",
          minimum=1e-4, maximum=100.0, step=0.05, fmt="%.4f"),
    Field("dual_every", "deadwooding.dual_every", "Dual update every k steps",
          "primal steps between multiplier updates; 0: once per epoch", minimum=0, maximum=100000, step=1),
    Field("delta_rep", "deadwooding.delta_rep", "Tolerance δ_rep",
          "allowed relative change of each layer's output", minimum=0.0, maximum=10.0, step=0.01, fmt="%.3f"),
    Field("delta_kd", "deadwooding.delta_kd", "Tolerance δ_kd", "allowed KL divergence from the teacher",
          minimum=0.0, maximum=10.0, step=0.005, fmt="%.3f"),
    Field("rho", "deadwooding.rho", "Tolerance ρ", "allowed relative rise of the adversarial loss",
          minimum=0.0, maximum=10.0, step=0.05, fmt="%.3f"),
    Field("profile_samples", "deadwooding.profile_samples", "Profile samples",
          "Deadwooding: test images of the one-shot profile at every κ, at most; fewer where the solve trains "
          "on little data, so the profile never costs more than the solve. It runs after the results are shown. "
          "0 skips it", minimum=0, maximum=100000, step=50),
    Field("eval_steps", "evaluation.steps", "PGD steps (robustness curve)", minimum=1, maximum=1000, step=1),
    Field("eval_samples", "evaluation.samples", "Test samples attacked", "0: the whole test split",
          minimum=0, maximum=100000, step=50, zero_is_none=True),
    Field("seed", "seed", "Seed", minimum=0, maximum=2**31 - 1, step=1),
    Field("device", "device", "Device", "auto: CUDA when present, else CPU", options=devices()),
)


def _default(path: str):
    return reduce(getattr, path.split("."), deadwood.RunConfig())


@dataclass(frozen=True)
class Choice:
    """What the sidebar asks for: the configurations to run, or why none can run."""

    configs: tuple[deadwood.RunConfig, ...] = ()
    problem: str | None = None

    @property
    def config(self) -> deadwood.RunConfig | None:
        return self.configs[0] if self.configs else None


# --------------------------------------------------------------------------- single widgets

def data_widgets() -> dict:
    """Dataset, model and where their files are: the values of RunConfig's data and model fields."""
    names = deadwood.dataset_names()
    values = {"dataset": st.selectbox("Dataset", names, index=names.index(_default("dataset")), key="dataset",
                                      persist_state=_KEEP, bind=_URL, help=_dataset_help(names))}
    if values["dataset"] == FOLDER:
        folder = st.text_input("Image folder", key="image_folder", persist_state=_KEEP, bind=_URL,
                               help="a folder in torchvision's ImageFolder layout: DIR/train/<class>/* and "
                                    "DIR/test/<class>/*, or DIR/<class>/* split by the seed")
        values["data_dir"] = folder.strip() or None
        values["image_size"] = int(st.number_input(
            "Image size", min_value=4, max_value=1024, value=_default("image_size"), step=1, key="image_size",
            persist_state=_KEEP, bind=_URL, help="every image is resized to this many pixels square"))
    elif not dataset_info(values["dataset"]).embedded:
        folder = st.text_input("Data folder", key="data_dir", persist_state=_KEEP, bind=_URL,
                               help="the folder holding the dataset's files in torchvision's layout")
        values["data_dir"] = folder.strip() or None
    values["model"] = model_widget()
    checkpoint = st.text_input("Teacher checkpoint", key="teacher_checkpoint", persist_state=_KEEP, bind=_URL,
                               help="optional: a file holding your trained state_dict for this model (read "
                                    "weights-only); the teacher starts from it and trains 0 epochs unless you "
                                    "change 'Teacher epochs' under Advanced")
    values["teacher_checkpoint"] = checkpoint.strip() or None
    if values["teacher_checkpoint"]:
        st.caption("The teacher starts from these weights and trains 0 epochs, unless 'Teacher epochs' under "
                   "Advanced is changed.")
    return values


def model_widget() -> str:
    """A registry model, or ``torchvision:NAME`` when the "torchvision…" entry reveals the architectures."""
    names = [*deadwood.model_names(), TORCHVISION_ENTRY]
    pick = st.selectbox("Model", names, key="model", persist_state=_KEEP, bind=_URL, index=names.index(_default("model")),
                        help=f"{TORCHVISION_ENTRY}: any torchvision classification architecture, untrained")
    if pick != TORCHVISION_ENTRY:
        return pick
    archs = torchvision_names()
    arch = st.selectbox("torchvision architecture", archs, index=archs.index(DEFAULT_ARCHITECTURE),
                        key="torchvision_model", persist_state=_KEEP, bind=_URL,
                        help="built with weights=None (nothing downloads), adapted to the input size and classes")
    return TORCHVISION + arch


def _dataset_help(names) -> str:
    """Which datasets need files. The menu shows the bare names: the address holds what the menu shows."""
    embedded = [n for n in names if n != FOLDER and dataset_info(n).embedded]
    files = [n for n in names if n != FOLDER and n not in embedded]
    return (f"embedded, nothing to download: {', '.join(embedded)} · read from a folder of their files: "
            f"{', '.join(files)} · {FOLDER}: your own images")


def method_widget() -> str:
    names = deadwood.method_names()
    return st.selectbox("Method", names, index=names.index(_default("method")), key="method",
                        persist_state=_KEEP, bind=_URL, help=" · ".join(f"{n}: {deadwood.get_method(n).about}" for n in names))


def kappa_label(k: float) -> str:
    """A κ stop as the slider and the address show it: its exact value (0.985)."""
    return f"{k:g}"


def sparsity_widget() -> float:
    """κ from :data:`SPARSITY_CHOICES`: the returned float is the chosen stop itself, exactly."""
    return st.select_slider("Target sparsity κ", SPARSITY_CHOICES, value=_default("sparsity"), format_func=kappa_label,
                            key="sparsity", persist_state=_KEEP, bind=_URL,
                            help="fraction of prunable weights the global cut zeroes; the stops are spread by "
                                 "what is kept (50 % to 0.5 %), so most of the track is 0.9-0.995")


EPSILON_HELP = ("the run's L∞ budget on inputs in [0, 1]: the teacher, the solve's robustness constraint and the "
                "fine-tune train against it, and the run reports robust accuracy at it. Changing it trains a "
                "different teacher. (The Robustness explorer's own attack ε only attacks finished models.)")


def epsilon_widget() -> float:
    value = st.slider("Run budget ε (train and evaluate)", *EPSILON_RANGE, value=_default("epsilon"), step=0.01,
                      format="%.2f", key="epsilon", persist_state=_KEEP, bind=_URL, help=EPSILON_HELP)
    return round(float(value), 4)


BUDGET_HELP = {"matched": "every method trains as many epochs after the teacher as Deadwooding (its dual solve "
                          "plus its fine-tune): a method's own stage spends its part, the fine-tune the rest",
               "finetune": "every method fine-tunes the same epochs; own stages (the dual solve, HYDRA's scores, "
                           "GMP's pruning) train on top"}


def budget_widget() -> str:
    """The training budget after the teacher (deadwood.methods.budget): 'matched' or 'finetune'."""
    from deadwood.methods.budget import BUDGETS

    return st.radio("Training budget", BUDGETS, index=BUDGETS.index(_default("budget")), key="budget",
                    horizontal=True, persist_state=_KEEP,
                    help=" · ".join(f"{b}: {BUDGET_HELP[b]}" for b in BUDGETS))


def advanced_widgets() -> dict:
    """The "Advanced" expander: dotted config path -> value."""
    out = {}
    with st.expander("Advanced"):
        for f in ADVANCED:
            default = _default(f.path)
            if isinstance(default, bool):
                value = st.checkbox(f.label, value=default, key=f.key, help=f.help or None, persist_state=_KEEP, bind=_URL)
            elif f.options:
                value = st.selectbox(f.label, f.options, index=f.options.index(default), key=f.key,
                                     help=f.help or None, persist_state=_KEEP, bind=_URL)
            else:
                kind = float if isinstance(f.step, float) else int
                value = st.number_input(f.label, min_value=kind(f.minimum), max_value=kind(f.maximum),
                                        value=kind(default or 0), step=kind(f.step), format=f.fmt, key=f.key,
                                        help=f.help or None, persist_state=_KEEP, bind=_URL)
                value = None if f.zero_is_none and value == 0 else value
            out[f.path] = value
    return out


def run_button(choice: Choice, busy: bool, label: str = "Run") -> bool:
    reason = "a run is in progress" if busy else choice.problem
    return st.button(label, key="run", type="primary", width="stretch", disabled=bool(reason),
                     help=reason or "cached configurations come back at once")


def sidebar(inputs: Callable[[], Choice], busy: bool) -> tuple[Choice, bool]:
    """The sidebar: the Run button on top, then ``inputs()``; returns their choice and whether Run
    was pressed. The button is drawn last (it needs the choice) into a slot reserved first: below
    the inputs it moved whenever one of them changed height (a multiselect shrinking as it loses
    focus after a tag is removed), and the click that caused the change missed it."""
    with st.sidebar:
        top = st.container()
        choice = inputs()
        with top:
            pressed = run_button(choice, busy)
    return choice, pressed


# --------------------------------------------------------------------------- whole sidebars

def single_run() -> Choice:
    """dataset, model, method, sparsity, epsilon, advanced: one configuration."""
    values = data_widgets()
    values["method"] = method_widget()
    values["sparsity"] = sparsity_widget()
    values["epsilon"] = epsilon_widget()
    values["budget"] = budget_widget()
    return choose([values], advanced_widgets())


def deadwooding_run() -> Choice:
    """:func:`single_run` without the method menu: the walkthrough tells Deadwooding."""
    values = data_widgets()
    values["method"] = "deadwooding"
    values["sparsity"] = sparsity_widget()
    values["epsilon"] = epsilon_widget()
    return choose([values], advanced_widgets())


def sweep_run() -> Choice:
    """dataset, model, several methods, a sparsity grid, epsilon, advanced: their product."""
    values = data_widgets()
    pruners = [n for n in deadwood.method_names() if deadwood.get_method(n).prunes]
    methods = st.multiselect("Methods", pruners, default=[m for m in DEFAULT_METHODS if m in pruners],
                             key="methods", persist_state=_KEEP, bind=_URL)
    grid = st.multiselect("Sparsity grid", SPARSITY_GRID, default=DEFAULT_GRID, key="grid",
                          persist_state=_KEEP, bind=_URL, format_func=lambda k: f"{k:.1%}")
    values["epsilon"] = epsilon_widget()
    values["budget"] = budget_widget()
    advanced = advanced_widgets()
    if not methods or not grid:
        return Choice(problem="pick at least one method and one sparsity")
    return choose([dict(values, method=m, sparsity=k) for m in methods for k in sorted(grid)], advanced)


def choose(values: list[dict], advanced: dict) -> Choice:
    """One configuration per dict in ``values`` (its fields, then the ``advanced`` ones, then its own
    dotted ones such as ``"cut.granularity"``), or the first reason none can run: a value, then what a
    run checks as it starts (the folder, the model on that data, the checkpoint), then the data's files."""
    if values[0]["dataset"] == FOLDER and values[0].get("data_dir") is None:  # in the app's words, not --data-dir
        return Choice(problem="type the path of your images into 'Image folder' in the sidebar: a folder in "
                              "torchvision's ImageFolder layout (DIR/train/<class>/* and DIR/test/<class>/*, "
                              "or DIR/<class>/* split by the seed)")
    if values[0].get("teacher_checkpoint") and advanced.get("teacher.epochs") == _default("teacher.epochs"):
        # as the CLI does without --teacher-epochs: the user's trained weights are the teacher as they are
        advanced = {**advanced, "teacher.epochs": 0}
    try:
        configs = tuple(_config(v, advanced) for v in values)
    except deadwood.DeadwoodError as e:  # a value out of range, a name no registry knows
        return Choice(problem=str(e))
    problem = start_problem(configs[0]) or data_problem(configs[0])
    return Choice(configs=() if problem else configs, problem=problem)


def _config(values: dict, advanced: dict) -> deadwood.RunConfig:
    """``values``' top-level fields, then ``advanced``, then ``values``' own dotted fields on top."""
    dotted = {k: v for k, v in values.items() if "." in k}
    top = {k: v for k, v in values.items() if k not in dotted}
    return deadwood.with_updates(deadwood.RunConfig(**top), **advanced, **dotted).validate()


ATTACK_EPSILON_HELP = ("this page's attack on the finished models only: nothing is trained again. The sidebar's "
                       "run budget ε is what the run trained and reported against.")


def attack_widgets(config: deadwood.RunConfig | None, disabled: bool = False) -> tuple[str, float, int]:
    """Attack, its budget and the number of test samples, in a row above the explorer's charts
    (``disabled`` while the page's job computes)."""
    from deadwood.robustness import ATTACK_INFO

    names = list(ATTACK_INFO)
    left, mid, right = st.columns([2, 3, 2])
    attack = left.selectbox("Attack", names, index=names.index("pgd"), key="attack", persist_state=_KEEP, bind=_URL,
                            disabled=disabled, help=" · ".join(f"{n}: {i['about']}" for n, i in ATTACK_INFO.items()))
    if ATTACK_INFO[attack]["norm"] == "linf":  # one slider per norm: their scales differ
        eps = mid.slider("Explorer attack ε (L∞)", 0.0, 0.5, config.epsilon if config else 0.1, step=0.01,
                         key="attack_epsilon", persist_state=_KEEP, bind=_URL, disabled=disabled,
                         help=ATTACK_EPSILON_HELP + " Budget per pixel, inputs in [0, 1].")
    else:
        eps = mid.slider("Explorer attack ε (L2)", 0.0, 4.0, 1.0, step=0.05, key="attack_epsilon_l2",
                         persist_state=_KEEP, bind=_URL, disabled=disabled, help=ATTACK_EPSILON_HELP +
                         " Euclidean length of the perturbation.")
    samples = right.number_input("Test samples attacked", 10, 10_000, 200, step=50, key="samples",
                                 persist_state=_KEEP, bind=_URL, disabled=disabled,
                                 help="for the recall and the security curve")
    return attack, round(float(eps), 4), int(samples)


# --------------------------------------------------------------------------- data

@st.cache_resource(show_spinner="Loading the dataset...", max_entries=8)
def dataset(name: str, split: str, data_dir: str | None, seed: int,
            image_size: int = 32) -> deadwood.data.datasets.ArrayDataset:
    """A dataset split, loaded once per process and shared by every session (never edit its tensors in place)."""
    return deadwood.load_dataset(name, split, data_dir, seed, image_size=image_size)


def data_problem(config: deadwood.RunConfig) -> str | None:
    """Why ``config``'s dataset cannot be read, in words that say where to put the files (None if it can)."""
    if config.dataset == FOLDER:  # scanned by start_problem; reading finds the damaged images
        try:  # through the engine's own cache, keyed by the images' digest: a repaired file is read again
            with st.spinner("Reading the images..."):
                for split in SPLITS:  # a bad file in either split would stop the run
                    load_split(config, split)
        except deadwood.DeadwoodError as e:
            return str(e)
        return None
    info = dataset_info(config.dataset)
    if info.embedded:
        return None
    if config.data_dir is None:
        return (f"'{config.dataset}' is not embedded: type the folder that holds its files into "
                f"'Data folder' in the sidebar (it must contain {', '.join(info.files)}, torchvision's layout)")
    root = Path(config.data_dir).expanduser().resolve()
    absent = [f for f in info.files if not (root / f).is_file()]
    if absent:  # said here in the app's words: the engine's message names the CLI's --download
        return (f"'{config.dataset}' not found in {root}: missing {', '.join(absent)}. Copy its files into "
                f"that folder in torchvision's layout ({', '.join(info.files)}), or type the folder that "
                "holds them into 'Data folder' in the sidebar")
    try:
        dataset(config.dataset, "test", config.data_dir, config.seed)
    except deadwood.DeadwoodError as e:  # files present but unreadable: the engine names the file
        return str(e)
    return None


def start_problem(config: deadwood.RunConfig) -> str | None:
    """Why a run of ``config`` would be refused as it starts (None if it would not): the engine's own
    check (:func:`deadwood.resolve`: the image folder scanned, the model fitted to the data, the
    teacher checkpoint loaded into it), which keeps its answers per process, so moving a slider does
    not redo them. A checkpoint path that is no file is said first, in the app's words."""
    if config.teacher_checkpoint is not None:
        path = Path(config.teacher_checkpoint).expanduser()
        if not path.is_file():
            return (f"teacher checkpoint {path} {'is a folder' if path.is_dir() else 'does not exist'}: type the "
                    "path of a file holding your trained state_dict into 'Teacher checkpoint', or clear it")
    try:
        deadwood.resolve(config)
    except deadwood.DeadwoodError as e:
        return str(e)
    return None
