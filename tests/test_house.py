"""The layout's rules, checked from the source: the engine never imports its faces, no import
circles, one registry of method facts that everything else reads, and the installed command."""
import ast
import re
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import deadwood
from deadwood import stages
from deadwood.config import RunConfig
from deadwood.errors import ConfigError
from deadwood.methods import cut_methods, get_method, method_sections, methods
from conftest import tiny

PACKAGE = Path(deadwood.__file__).resolve().parent
FACES = ("deadwood.cli", "deadwood.bench", "app", "streamlit")  # what the engine must not import

# Which part of the package may import which: the same table as docs/architecture.md, lowest first.
# A part is a package (``data``), a root module (``train``), or a lower layer of a package
# (``storage.files``, ``methods.registry``). Each part may import only parts listed above it.
IMPORT_TABLE = {
    "errors": set(), "version": set(), "events": set(), "fingerprint": set(),
    "device": {"errors"},
    "data": {"errors"},
    "robustness": {"data", "device", "errors", "events"},
    "pruning": {"data", "robustness", "errors"},
    "models": {"data", "pruning", "errors"},
    "storage.files": {"models", "errors"},
    "train": {"data", "pruning", "robustness", "events"},
    "methods.registry": {"data", "pruning", "errors", "events"},
    "methods.budget": {"methods.registry", "errors"},
    "methods": {"methods.registry", "methods.budget", "data", "models", "pruning", "robustness", "train",
                "storage.files", "fingerprint", "errors", "events"},
    "config": {"methods", "methods.budget", "data", "models", "device", "fingerprint", "errors"},
    "storage": {"storage.files", "config", "data", "models", "pruning", "robustness", "fingerprint", "errors",
                "version"},
    "stages": {"methods", "methods.budget", "events"},
    "progress": {"stages", "events"},
    "pipeline": {"config", "storage", "storage.files", "stages", "methods", "methods.budget", "train", "models",
                 "pruning", "robustness", "data", "device", "fingerprint", "errors", "events"},
    "prune_api": {"pipeline", "config", "models", "pruning", "data", "errors", "events"},
    "deploy": {"storage", "storage.files", "pruning", "data", "device", "errors"},
    "analysis": {"pipeline", "config", "train", "models", "pruning", "robustness", "data", "device", "events"},
    "deadwood": {"prune_api", "pipeline", "storage", "config", "methods", "models", "pruning", "data", "errors",
                 "events", "version"},
    "bench": {"deploy", "pipeline", "storage", "storage.files", "stages", "config", "methods", "train", "models",
              "robustness", "data", "device", "fingerprint", "errors", "events"},
    "cli": {"bench", "deploy", "progress", "pipeline", "storage", "storage.files", "config", "methods", "methods.budget", "train",
            "models", "robustness", "data", "device", "errors"},
    "__main__": {"cli"},
}
_LAYERS = {"methods.registry", "methods.budget", "storage.files"}


def part_of(module: str) -> str:
    """The table's part that holds ``module`` (a dotted name under ``deadwood``)."""
    parts = module.split(".")[1:]
    if not parts:
        return "deadwood"
    if ".".join(parts[:2]) in _LAYERS:
        return ".".join(parts[:2])
    return parts[0]


def import_table_breaches(root: Path = PACKAGE) -> dict[str, list[str]]:
    """Every import in the package under ``root`` that the table does not allow, by module (imports
    inside functions included: a lazy import is still a dependency)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        me = _module(path, root)
        mine = part_of(me)
        for name in sorted(_imports(path, top_level_only=False, root=root)):
            if not name.startswith("deadwood.") or not _exists(name, root):
                continue
            other = part_of(name)
            inside = other == mine or (mine == "methods" and other.startswith("methods.")) or (
                mine == "storage" and other == "storage.files")
            if not inside and other not in IMPORT_TABLE.get(mine, set()):
                out.setdefault(me, []).append(name)
    return out


def _exists(name: str, root: Path) -> bool:
    """Whether the dotted ``name`` is a module or package under ``root`` (not a function imported by name)."""
    rel = Path(*name.split(".")[1:])
    return (root / rel).with_suffix(".py").is_file() or (root / rel).is_dir()


def _module(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool, root: Path = PACKAGE) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = _module(path, root) if path.name == "__init__.py" else _module(path, root).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            if node.module:
                out.add(name)
            # ``from . import x`` names a submodule when x is one (the package is already importing)
            out.update(f"{name}.{a.name}" for a in node.names)
    return out


def _engine_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "bench", "__main__.py"):
            yield path


def test_the_engine_never_imports_the_cli_the_bench_tooling_or_the_app():
    offenders = {}
    for path in _engine_files():
        bad = {m for m in _imports(path, top_level_only=False) if m.startswith(FACES)}
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_the_engine_and_the_cli_start_without_the_heavy_libraries_they_wrap():
    """Each is imported where it is used: foolbox and torchattacks by an attack (deadwood.robustness),
    ray by a grid on workers (the sweep executor), torchvision by an image folder or a torchvision
    architecture. ``deadwood --help``, a worker that runs the embedded default, never pays for them."""
    code = ("import sys, deadwood, deadwood.cli, deadwood.bench; "
            "print(sorted(m for m in ('foolbox', 'torchattacks', 'ray', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_every_import_follows_the_table():
    assert import_table_breaches() == {}


def test_the_table_lists_every_part_once_and_only_parts_above_each():
    order = list(IMPORT_TABLE)
    for i, (part, allowed) in enumerate(IMPORT_TABLE.items()):
        assert allowed <= set(order[:i]), f"{part} may import {sorted(allowed - set(order[:i]))}, listed after it"
    on_disk = {part_of(_module(p)) for p in PACKAGE.rglob("*.py")}
    assert on_disk == set(IMPORT_TABLE), "a part of the package is missing from the table, or the table names a ghost"


def test_an_import_against_the_table_is_caught(tmp_path):
    """The check fails on a real breach: data importing the pipeline, in a copy of the package."""
    import shutil

    copy = tmp_path / "deadwood"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert import_table_breaches(copy) == {}
    target = copy / "data" / "digest.py"
    target.write_text(target.read_text() + "\n\ndef _late():\n    from ..pipeline import run\n    return run\n")
    assert import_table_breaches(copy) == {"deadwood.data.digest": ["deadwood.pipeline"]}


def test_the_architecture_doc_shows_the_same_table():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for part, allowed in IMPORT_TABLE.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{part}` |")), None)
        assert row is not None, f"docs/architecture.md has no row for {part}"
        cell = row.split("|")[2]
        assert set(re.findall(r"`([\w.]+)`", cell)) == allowed, f"docs/architecture.md's row for {part} differs"


def test_no_import_circles_among_the_package_modules():
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in files and i != m} for m, p in files.items()}
    state: dict[str, int] = {}

    def visit(m, trail):
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(n):] + [n]))
            if n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_every_method_fact_comes_from_the_registry():
    assert set(method_sections()) == {m.section for m in methods() if m.section} == {"deadwooding", "hydra", "hydra_adam", "gmp", "harp"}
    assert set(cut_methods()) == {"deadwooding", "magnitude"}
    # The key of a method ignores every other method's section, as the registry says.
    base = tiny(method="magnitude", budget="finetune")
    other = deadwood.with_updates(base, **{"deadwooding.epochs": 99, "hydra.epochs": 99, "gmp.frequency": 99})
    assert other.key() == base.key()
    # Under the matched budget the solve's epochs set every method's budget, and so its key.
    matched = tiny(method="magnitude")
    assert deadwood.with_updates(matched, **{"deadwooding.epochs": 99}).key() != matched.key()
    assert deadwood.with_updates(matched, **{"hydra.epochs": 99}).key() == matched.key()
    gmp = tiny(method="gmp")
    assert deadwood.with_updates(gmp, **{"gmp.frequency": 5}).key() != gmp.key()
    hydra = tiny(method="hydra", budget="finetune")
    assert deadwood.with_updates(hydra, **{"hydra.epochs": 99}).key() != hydra.key()
    with pytest.raises(ConfigError, match="budget 'matched' gives hydra 5 epochs"):
        deadwood.with_updates(tiny(method="hydra"), **{"hydra.epochs": 99})
    # Stage tables, planned stages and chart colours follow each method's own facts.
    for m in methods():
        planned = stages.planned(tiny(method=m.name))
        assert (m.stage.name in planned) if m.stage else planned[:2] == ["teacher", "cut"]
        if m.stage:
            assert stages.stage(m.stage.name).label == m.stage.label
    assert len({m.color for m in methods()}) == len(methods())


def test_the_teacher_evaluation_is_its_own_stage_in_the_events(tmp_path):
    seen = []
    deadwood.run(tiny(method="magnitude", seed=31), on_event=lambda e: seen.append((e.kind, e.stage)),
                 cache_dir=tmp_path)
    kinds = [s for k, s in seen if k == "start"]
    assert kinds.index("teacher") < kinds.index("teacher-eval") < kinds.index("finetune") < kinds.index("eval")
    assert [s.name for s in stages.all_stages()][:2] == ["teacher", "teacher-eval"]


def test_the_deadwood_command_is_installed_and_points_at_the_cli():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("deadwood") == "deadwood.cli:main"


def test_unknown_method_is_named_the_same_way_everywhere():
    from deadwood import ConfigError
    from deadwood.bench import BenchSpec

    messages = []
    for attempt in (lambda: get_method("pruny"), lambda: RunConfig(method="pruny"),
                    lambda: BenchSpec(tiny(), ("pruny",), (0.9,), (0,))):
        with pytest.raises(ConfigError) as e:
            attempt()
        messages.append(str(e.value))
    assert len(set(messages)) == 1 and messages[0].startswith("unknown method 'pruny'; choose one of: deadwooding")
