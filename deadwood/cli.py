"""``python -m deadwood run | eval | bench``: flags are generated from the config dataclasses.

Every failure the user can fix ends in one line on stderr and exit status 2, and
nothing is written before the configuration is known to be valid.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from typing import Any, get_args, get_origin

from .config import RunConfig, _SUBCONFIGS
from .errors import DeadwoodError

_TOP = ("dataset", "model", "method", "sparsity", "epsilon", "seed", "batch_size", "min_keep",
        "device", "amp", "data_dir", "download")


class _Parser(argparse.ArgumentParser):
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


def _progress():
    """An ``on_event`` callback drawing one tqdm bar per stage (on stderr)."""
    from tqdm.auto import tqdm

    bars: dict[str, Any] = {}
    labels = {"teacher": "teacher (dense)", "dual": "dual solve", "hydra": "hydra scores",
              "finetune": "fine-tune", "eval": "evaluate"}

    def on_event(e):
        if e.kind == "start":
            bars[e.stage] = tqdm(total=e.total, desc=labels.get(e.stage, e.stage), unit="epoch", leave=True,
                                 file=sys.stderr, dynamic_ncols=True)
        elif e.kind == "epoch" and e.stage in bars:
            bar = bars[e.stage]
            bar.update(1)
            acc = e.metrics.get("accuracy")
            if acc is not None:
                bar.set_postfix(acc=f"{acc:.3f}")
        elif e.kind == "end" and e.stage in bars:
            bars.pop(e.stage).close()
        elif e.kind == "cached":
            print(f"{e.stage}: from cache", file=sys.stderr)

    return on_event


def _summary(loaded) -> str:
    r = loaded.record
    eps = r.config["epsilon"]
    rob = r.robust_accuracy(eps)
    t = r.timings
    lines = [
        f"run       {loaded.path}",
        f"method    {r.config['method']}  sparsity {r.global_sparsity:.4f}  epsilon {eps}",
        f"accuracy  one-shot {r.one_shot_accuracy:.4f}  clean {r.clean_accuracy:.4f}  "
        f"robust@{eps} {rob if rob is None else format(rob, '.4f')}",
        f"teacher   clean {r.teacher.get('clean_accuracy', float('nan')):.4f}",
        "checks    " + "  ".join(f"{who} {_checks_line(rob_)}" for who, rob_ in
                                 (("pruned", r.robustness), ("teacher", r.teacher.get("robustness", {})))),
        "seconds   " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()),
    ]
    return "\n".join(lines)


def _checks_line(robustness: dict) -> str:
    checks = robustness.get("checks") or []
    failed = [c["name"] for c in checks if c.get("passed") is False]
    if not checks:
        return "not run"
    return f"FAILED ({', '.join(failed)})" if failed else "passed"


def _robustness_warnings(record) -> list[str]:
    """The failed sanity checks of both models, as the one-line warnings the CLI prints."""
    return [f"warning: {who}: {m}" for who, rob in (("pruned", record.robustness),
                                                    ("teacher", record.teacher.get("robustness", {})))
            for m in rob.get("warnings") or []]


def cmd_run(ns) -> int:
    import warnings

    from .pipeline import run
    from .robustness import RobustnessWarning

    config = config_from_args(ns)
    with warnings.catch_warnings():
        # Printed below from the record instead, as one line each (and again for a cached run).
        warnings.simplefilter("ignore", RobustnessWarning)
        loaded = run(config, on_event=_progress(), cache_dir=ns.cache_dir, out=ns.out, use_cache=not ns.no_cache)
    print(_summary(loaded))
    for line in _robustness_warnings(loaded.record):
        print(line, file=sys.stderr)
    if ns.out:
        print(f"written   {ns.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m deadwood", description="Deadwood: robust global pruning, measured.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="teacher -> prune -> fine-tune -> evaluate; writes a run directory")
    add_config_arguments(r)
    r.add_argument("--out", help="also copy the run directory here")
    r.add_argument("--cache-dir", help="cache folder (default: $DEADWOOD_CACHE or ~/.cache/deadwood)")
    r.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    r.set_defaults(func=cmd_run)
    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return p


# Other modules (eval, bench) add their sub-commands here.
_EXTRA_COMMANDS: list = []


from .cli_eval import add_eval_command  # noqa: E402  (``eval`` lives in its own module)
from .cli_bench import add_bench_command  # noqa: E402  (so does ``bench``)

_EXTRA_COMMANDS.extend([add_eval_command, add_bench_command])


def main(argv=None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    ns.argv = list(argv) if argv is not None else sys.argv[1:]  # bench writes the exact command
    try:
        return ns.func(ns)
    except DeadwoodError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages stay cached", file=sys.stderr)
        return 130
