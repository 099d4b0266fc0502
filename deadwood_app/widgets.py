"""Sidebar inputs shared by the pages: widgets in, immutable run configurations (or a reason) out.

Widget keys are stable (``dataset``, ``data_dir``, ``image_folder``, ``image_size``, ``model``,
``torchvision_model``, ``teacher_checkpoint``, ``method``, ``sparsity``, ``epsilon``, ``run`` and
the advanced ones in :data:`ADVANCED`) so tests and
scripts can drive them, and their values persist across pages for the session.
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
from deadwood.checkpoint import file_digest, load_checkpoint
from deadwood.config import HYDRA_SCHEDULES
from deadwood.data import FOLDER, SPLITS, dataset_info, load_split
from deadwood.dual import RULES
from deadwood.models import TORCHVISION, build_model
from deadwood.zoo import torchvision_names

SPARSITY_RANGE = (0.5, 0.995)
EPSILON_RANGE = (0.0, 0.3)
SPARSITY_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
DEFAULT_GRID = (0.9, 0.95, 0.98, 0.99)
DEFAULT_METHODS = ("deadwooding", "magnitude")
_KEEP = "session"  # widget values survive page switches
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
          "Deadwooding: test images of the one-shot profile at every κ; 0 skips it (on a large network, "
          "such as a torchvision ResNet, it costs more than the solve)", minimum=0, maximum=100000, step=50),
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
                                      persist_state=_KEEP, format_func=_dataset_label)}
    if values["dataset"] == FOLDER:
        folder = st.text_input("Image folder", key="image_folder", persist_state=_KEEP,
                               help="a folder in torchvision's ImageFolder layout: DIR/train/<class>/* and "
                                    "DIR/test/<class>/*, or DIR/<class>/* split by the seed")
        values["data_dir"] = folder.strip() or None
        values["image_size"] = int(st.number_input(
            "Image size", min_value=4, max_value=1024, value=_default("image_size"), step=1, key="image_size",
            persist_state=_KEEP, help="every image is resized to this many pixels square"))
    elif not dataset_info(values["dataset"]).embedded:
        folder = st.text_input("Data folder", key="data_dir", persist_state=_KEEP,
                               help="the folder holding the dataset's files in torchvision's layout")
        values["data_dir"] = folder.strip() or None
    values["model"] = model_widget()
    checkpoint = st.text_input("Teacher checkpoint", key="teacher_checkpoint", persist_state=_KEEP,
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
    pick = st.selectbox("Model", names, key="model", persist_state=_KEEP, index=names.index(_default("model")),
                        help=f"{TORCHVISION_ENTRY}: any torchvision classification architecture, untrained")
    if pick != TORCHVISION_ENTRY:
        return pick
    archs = torchvision_names()
    arch = st.selectbox("torchvision architecture", archs, index=archs.index(DEFAULT_ARCHITECTURE),
                        key="torchvision_model", persist_state=_KEEP,
                        help="built with weights=None (nothing downloads), adapted to the input size and classes")
    return TORCHVISION + arch


def _dataset_label(name: str) -> str:
    if name == FOLDER:  # scanning needs a path, and the label is drawn before one is typed
        return "folder (your images)"
    return f"{name} (embedded)" if dataset_info(name).embedded else name


def method_widget() -> str:
    names = deadwood.method_names()
    return st.selectbox("Method", names, index=names.index(_default("method")), key="method",
                        persist_state=_KEEP, help=" · ".join(f"{n}: {deadwood.get_method(n).about}" for n in names))


def sparsity_widget() -> float:
    value = st.slider("Target sparsity κ", *SPARSITY_RANGE, value=_default("sparsity"), step=0.005, format="%.3f",
                      key="sparsity", persist_state=_KEEP, help="fraction of prunable weights the global cut zeroes")
    return round(float(value), 4)  # 0.95, not 0.9500000000000001: the cache key depends on it


def epsilon_widget() -> float:
    value = st.slider("Attack epsilon ε", *EPSILON_RANGE, value=_default("epsilon"), step=0.01, format="%.2f",
                      key="epsilon", persist_state=_KEEP, help="L∞ budget on inputs in [0, 1]")
    return round(float(value), 4)


def advanced_widgets() -> dict:
    """The "Advanced" expander: dotted config path -> value."""
    out = {}
    with st.expander("Advanced"):
        for f in ADVANCED:
            default = _default(f.path)
            if isinstance(default, bool):
                value = st.checkbox(f.label, value=default, key=f.key, help=f.help or None, persist_state=_KEEP)
            elif f.options:
                value = st.selectbox(f.label, f.options, index=f.options.index(default), key=f.key,
                                     help=f.help or None, persist_state=_KEEP)
            else:
                kind = float if isinstance(f.step, float) else int
                value = st.number_input(f.label, min_value=kind(f.minimum), max_value=kind(f.maximum),
                                        value=kind(default or 0), step=kind(f.step), format=f.fmt, key=f.key,
                                        help=f.help or None, persist_state=_KEEP)
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
    return choose([values], advanced_widgets())


def sweep_run() -> Choice:
    """dataset, model, several methods, a sparsity grid, epsilon, advanced: their product."""
    values = data_widgets()
    pruners = [n for n in deadwood.method_names() if deadwood.get_method(n).prunes]
    methods = st.multiselect("Methods", pruners, default=[m for m in DEFAULT_METHODS if m in pruners],
                             key="methods", persist_state=_KEEP)
    grid = st.multiselect("Sparsity grid", SPARSITY_GRID, default=DEFAULT_GRID, key="grid",
                          persist_state=_KEEP, format_func=lambda k: f"{k:.1%}")
    values["epsilon"] = epsilon_widget()
    advanced = advanced_widgets()
    if not methods or not grid:
        return Choice(problem="pick at least one method and one sparsity")
    return choose([dict(values, method=m, sparsity=k) for m in methods for k in sorted(grid)], advanced)


def choose(values: list[dict], advanced: dict) -> Choice:
    """One configuration per dict in ``values`` (its fields, then the ``advanced`` ones, then its own
    dotted ones such as ``"cut.granularity"``), or the first reason none can run: the data, the model,
    the checkpoint."""
    if values[0]["dataset"] == FOLDER and values[0].get("data_dir") is None:  # in the app's words, not --data-dir
        return Choice(problem="type the path of your images into 'Image folder' in the sidebar: a folder in "
                              "torchvision's ImageFolder layout (DIR/train/<class>/* and DIR/test/<class>/*, "
                              "or DIR/<class>/* split by the seed)")
    if values[0].get("teacher_checkpoint") and advanced.get("teacher.epochs") == _default("teacher.epochs"):
        # as the CLI does without --teacher-epochs: the user's trained weights are the teacher as they are
        advanced = {**advanced, "teacher.epochs": 0}
    try:
        configs = tuple(_config(v, advanced) for v in values)
    except deadwood.DeadwoodError as e:  # a model that does not fit, a folder that cannot be scanned
        return Choice(problem=str(e))
    problem = data_problem(configs[0]) or checkpoint_problem(configs[0])
    return Choice(configs=() if problem else configs, problem=problem)


def _config(values: dict, advanced: dict) -> deadwood.RunConfig:
    """``values``' top-level fields, then ``advanced``, then ``values``' own dotted fields on top."""
    dotted = {k: v for k, v in values.items() if "." in k}
    top = {k: v for k, v in values.items() if k not in dotted}
    return deadwood.with_updates(deadwood.RunConfig(**top), **advanced, **dotted).validate()


def attack_widgets(config: deadwood.RunConfig | None) -> tuple[str, float, int]:
    """Attack, its budget and the number of test samples, in a row above the explorer's charts."""
    from deadwood.robustness import ATTACK_INFO

    names = list(ATTACK_INFO)
    left, mid, right = st.columns([2, 3, 2])
    attack = left.selectbox("Attack", names, index=names.index("pgd"), key="attack", persist_state=_KEEP,
                            help=" · ".join(f"{n}: {i['about']}" for n, i in ATTACK_INFO.items()))
    if ATTACK_INFO[attack]["norm"] == "linf":  # one slider per norm: their scales differ
        eps = mid.slider("Attack epsilon (L∞)", 0.0, 0.5, config.epsilon if config else 0.1, step=0.01,
                         key="attack_epsilon", persist_state=_KEEP, help="budget per pixel, inputs in [0, 1]")
    else:
        eps = mid.slider("Attack epsilon (L2)", 0.0, 4.0, 1.0, step=0.05, key="attack_epsilon_l2",
                         persist_state=_KEEP, help="Euclidean length of the perturbation")
    samples = right.number_input("Test samples attacked", 10, 10_000, 200, step=50, key="samples",
                                 persist_state=_KEEP, help="for the recall and the security curve")
    return attack, round(float(eps), 4), int(samples)


# --------------------------------------------------------------------------- data

@st.cache_resource(show_spinner="Loading the dataset...", max_entries=8)
def dataset(name: str, split: str, data_dir: str | None, seed: int,
            image_size: int = 32) -> deadwood.data.ArrayDataset:
    """A dataset split, loaded once per process and shared by every session (read-only tensors)."""
    return deadwood.load_dataset(name, split, data_dir, seed, image_size=image_size)


def data_problem(config: deadwood.RunConfig) -> str | None:
    """Why ``config``'s dataset cannot be read, in words that say where to put the files (None if it can)."""
    if config.dataset == FOLDER:  # scanned when the config was built; reading finds the damaged images
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


def checkpoint_problem(config: deadwood.RunConfig) -> str | None:
    """Why ``config.teacher_checkpoint`` cannot start the teacher (None if it can, or there is none):
    a missing or unsafe file, or weights for another architecture, input size or class count."""
    if config.teacher_checkpoint is None:
        return None
    path = Path(config.teacher_checkpoint).expanduser()
    if not path.is_file():
        return (f"teacher checkpoint {path} {'is a folder' if path.is_dir() else 'does not exist'}: type the path "
                "of a file holding your trained state_dict into 'Teacher checkpoint', or clear it")
    try:  # the file's digest keys the answer, so an overwritten file is checked again
        digest = file_digest(path)
    except deadwood.DeadwoodError as e:
        return str(e)
    return _checkpoint_problem(config.model, config.data_info(), config.teacher_checkpoint, digest)


@st.cache_data(max_entries=16, show_spinner="Checking the checkpoint...")
def _checkpoint_problem(model: str, info: deadwood.data.DatasetInfo, path: str, digest: str) -> str | None:
    """The checkpoint loaded into a fresh ``model`` for ``info``'s data, as Stage 0 will load it; keyed
    by what decides the answer (``digest``: the file's content; never the sparsity or the method), so
    moving a slider does not redo it."""
    try:
        load_checkpoint(build_model(model, info), path)
    except deadwood.DeadwoodError as e:
        return str(e)
    return None
