"""The command line: ``deadwood run | eval | bench | cost | throughput | cache | deploy | export``
(also ``python -m deadwood``).

One argparse front end; each subcommand lives in its own module here and adds itself through
``add_*_command``. Flags for every configuration field come from :mod:`.options`. Every failure
the user can fix ends in one line on stderr and exit status 2, and nothing is written before
the configuration is known to be valid.
"""
from __future__ import annotations

import sys

from ..errors import DeadwoodError
from .bench import add_bench_command
from .cache import add_cache_command
from .cost import add_cost_command
from .deploy import add_deploy_command
from .eval import add_eval_command
from .export import add_export_command
from .options import Parser
from .run import add_run_command
from .throughput import add_throughput_command

COMMANDS = (add_run_command, add_eval_command, add_bench_command, add_cost_command, add_throughput_command,
            add_cache_command, add_deploy_command, add_export_command)


def build_parser() -> Parser:
    p = Parser(prog="deadwood", description="Deadwood: robust global pruning, measured.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in COMMANDS:
        add(sub)
    return p


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
