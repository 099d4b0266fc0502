"""``deadwood export``: a finished run's pruned network as a file (see :mod:`deadwood.deploy.export`).

    deadwood export --run DIR --format state_dict|prune|sparse|onnx [--out PATH]

Written atomically; a missing or damaged checkpoint, an unknown format, or an output folder that
is missing or not writable ends in one line on stderr and exit status 2, with no file left behind.
"""
from __future__ import annotations

from ..deploy.export import FORMATS, export


def add_export_command(sub) -> None:
    p = sub.add_parser("export", help="write a finished run's pruned network as a plain state_dict, the "
                                      "torch.nn.utils.prune form, sparse CSR tensors or ONNX")
    p.add_argument("--run", required=True, help="a finished run directory")
    p.add_argument("--format", required=True, help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--out", help="the file to write (default: in the run directory: export.pt, model.prune.pt, "
                                 "model.sparse.pt, model.onnx)")
    p.set_defaults(func=cmd_export)


def cmd_export(ns) -> int:
    r = export(ns.run, ns.format, ns.out)
    check = r.get("check")
    if check:
        print(f"onnxruntime gives torch's predictions on {check['samples']} test samples "
              f"({check['mismatches']} differ, max |Δlogit| {check['max_abs_diff']:.1e})")
    print(f"written   {r['path']} ({r['bytes']:,} bytes, format {r['format']})")
    return 0
