"""Command-line flags generated from the configuration dataclasses, one per field.

Every subcommand that builds a :class:`deadwood.RunConfig` takes its flags from here, so a
new hyperparameter is a new flag everywhere without a line of CLI code.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, get_args, get_origin

from ..config import RunConfig, _SUBCONFIGS

_TOP = ("dataset", "model", "method", "sparsity", "epsilon", "seed", "batch_size", "min_keep",
        "device", "amp", "data_dir", "download")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"error: {message}\n")


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")


def _add_field(group, prefix: str, f: dataclasses.Field, owner):
    hints = typing.get_type_hints(owner)
    typ = hints[f.name]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    dest = f"{prefix}.{f.name}" if prefix else f.name
    flag = _flag(prefix, f.name)
    if typ is bool:
        group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                           help=f"(default: {default})")
        return
    args = get_args(typ)
    if get_origin(typ) is tuple:
        group.add_argument(flag, dest=dest, type=args[0], nargs="+", default=default,
                           help=f"(default: {' '.join(map(str, default))})")
        return
    base = next((a for a in args if a is not type(None)), typ) if get_origin(typ) is typing.Union else typ
    group.add_argument(flag, dest=dest, type=base, default=default, help=f"(default: {default})")


def add_config_arguments(parser: argparse.ArgumentParser, top_fields=_TOP) -> None:
    """One flag per configuration field: ``top_fields`` of RunConfig, then every sub-config's."""
    top = parser.add_argument_group("run")
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    for name in top_fields:
        _add_field(top, "", fields[name], RunConfig)
    for section, cls in _SUBCONFIGS.items():
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            _add_field(group, section, f, cls)


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    values: dict[str, Any] = {}
    sections: dict[str, dict] = {}
    for k, v in vars(ns).items():
        head, _, rest = k.partition(".")
        if rest and head in _SUBCONFIGS:
            sections.setdefault(head, {})[rest] = v
        elif k in _TOP:
            values[k] = v
    for head, vals in sections.items():
        values[head] = _SUBCONFIGS[head](**vals)
    return RunConfig(**values)


def check_threads(threads) -> None:
    """``--threads``, when given, is a whole number >= 1."""
    from ..errors import ConfigError

    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be a whole number >= 1, got {threads}")
