"""Command-line flags generated from the configuration dataclasses, one per field.

Every subcommand that builds a :class:`deadwood.RunConfig` takes its flags from here, so a
new hyperparameter is a new flag everywhere without a line of CLI code.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, get_args, get_origin

from ..config import SECTIONS, RunConfig

_TOP = ("dataset", "model", "method", "sparsity", "epsilon", "seed", "batch_size", "min_keep",
        "device", "amp", "budget", "data_dir", "download", "image_size", "teacher_checkpoint")
_HELP = {
    "model": "a registry model ({models}) or torchvision:NAME, any torchvision classification architecture "
             "(untrained: weights=None; nothing downloads)",
    "dataset": "{datasets}; 'folder' reads torchvision's ImageFolder layout under --data-dir",
    "budget": "training epochs after the teacher: 'matched' gives every method Deadwooding's (its solve's "
              "--deadwooding-epochs plus --finetune-epochs; a method's own stage spends its part, the fine-tune "
              "the rest), 'finetune' fine-tunes every method --finetune-epochs (own stages on top)",
    "image_size": "dataset 'folder': images are resized to this many pixels a side",
    "teacher_checkpoint": "a trained state_dict for --model (torch.save(model.state_dict(), PATH); loaded with "
                          "weights_only=True): the teacher as given, trained --teacher-epochs more (default then 0)",
}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"error: {message}\n")


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "").replace("_", "-") + name.replace("_", "-")


def _add_field(group, prefix: str, f: dataclasses.Field, owner):
    hints = typing.get_type_hints(owner)
    typ = hints[f.name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    dest = f"{prefix}.{f.name}" if prefix else f.name
    flag = _flag(prefix, f.name)
    if dest == "teacher.epochs":  # left None when not given: a checkpoint's teacher then trains 0 epochs
        group.add_argument(flag, dest=dest, type=int, default=None,
                           help=f"(default: {default}; 0 with --teacher-checkpoint)")
        return
    if dest in _HELP:
        from ..data.datasets import dataset_names
        from ..models.registry import model_names

        text = _HELP[dest].format(models=", ".join(model_names()), datasets=", ".join(dataset_names()))
        group.add_argument(flag, dest=dest, type=_base(typ), default=default, help=f"{text} (default: {default})")
        return
    if typ is bool:
        group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                           help=f"(default: {default})")
        return
    args = get_args(typ)
    if get_origin(typ) is tuple:
        group.add_argument(flag, dest=dest, type=args[0], nargs="+", default=default,
                           help=f"(default: {' '.join(map(str, default))})")
        return
    group.add_argument(flag, dest=dest, type=_base(typ), default=default, help=f"(default: {default})")


def _base(typ):
    """``int`` for ``Optional[int]``: the type argparse converts a flag's text to."""
    if get_origin(typ) is typing.Union:
        return next(a for a in get_args(typ) if a is not type(None))
    return typ


def add_config_arguments(parser: argparse.ArgumentParser, top_fields=_TOP) -> None:
    """One flag per configuration field: ``top_fields`` of RunConfig, then every sub-config's."""
    top = parser.add_argument_group("run")
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    for name in top_fields:
        _add_field(top, "", fields[name], RunConfig)
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            _add_field(group, section, f, cls)


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    values: dict[str, Any] = {}
    sections: dict[str, dict] = {}
    for k, v in vars(ns).items():
        v = tuple(v) if isinstance(v, list) else v  # nargs="+" gives a list; the configuration holds tuples
        head, _, rest = k.partition(".")
        if rest and head in SECTIONS:
            sections.setdefault(head, {})[rest] = v
        elif k in _TOP:
            values[k] = v
    teacher = sections.get("teacher")
    if teacher is not None and teacher.get("epochs") is None:
        teacher["epochs"] = 0 if values.get("teacher_checkpoint") else SECTIONS["teacher"]().epochs
    for head, vals in sections.items():
        values[head] = SECTIONS[head](**vals)
    return RunConfig(**values)


def check_threads(threads) -> None:
    """``--threads``, when given, is a whole number >= 1."""
    from ..errors import ConfigError

    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be a whole number >= 1, got {threads}")
