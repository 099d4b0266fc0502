"""``deadwood cache list | verify | prune``: what the cache holds and whether it may be served.

Entries are the teacher, solve and run folders and the app's analysis results
(``analyses/NAME-DIGEST.npz``). ``list`` reads each entry's summary only (and an analysis archive's
member list), with its size; ``verify`` also loads every checkpoint, every solve's snapshots
(matched against what its summary notes) and every analysis result, without pickle; ``prune``
removes the stale, damaged and partial entries (``--dry-run`` only says which), but of a solve whose
snapshots alone are damaged only the snapshots, since the solve still serves runs. Exit status 1 from
``verify`` when anything is not ok.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..storage.cache import entries, prune
from ..storage.files import default_cache_dir


def add_cache_command(sub) -> None:
    p = sub.add_parser("cache", help="list, verify or prune the cache: teachers, solves, runs and analysis "
                       "results (stale by code, damaged, or partial entries)")
    p.add_argument("action", choices=("list", "verify", "prune"))
    p.add_argument("--cache-dir", help="cache folder (default: $DEADWOOD_CACHE or ~/.cache/deadwood)")
    p.add_argument("--dry-run", action="store_true", help="with prune: say what would go, remove nothing")
    p.set_defaults(func=cmd_cache)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_cache(ns) -> int:
    root = Path(ns.cache_dir) if ns.cache_dir else default_cache_dir()
    if ns.action == "prune":
        gone = prune(root, dry_run=ns.dry_run)
        for e in gone:
            print(f"{'would remove' if ns.dry_run else 'removed'}  {e.kind:<8} {e.state:<8} {e.path}  ({e.why})")
        print(f"{len(gone)} entr{'y' if len(gone) == 1 else 'ies'}, {_mb(sum(e.bytes for e in gone))}"
              f"{' (dry run)' if ns.dry_run else ''} in {root}")
        return 0
    found = entries(root, deep=ns.action == "verify")
    for e in found:
        print(f"{e.kind:<8} {e.state:<8} {_mb(e.bytes):>9}  {e.path.name}" + (f"  ({e.why})" if e.why else ""))
    counts = Counter(e.state for e in found)
    if not found:
        print(f"0 entries in {root}")
    else:
        kinds = ", ".join(f"{n} {k}" for k, n in Counter(e.kind for e in found).items())
        print(f"{len(found)} entries ({kinds}), {_mb(sum(e.bytes for e in found))} in {root}: "
              + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 1 if ns.action == "verify" and any(e.state != "ok" for e in found) else 0
