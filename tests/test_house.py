"""The layout's rules, checked from the source: the engine never imports its faces, no import
circles, one registry of method facts that everything else reads, and the installed command."""
import ast
import importlib.metadata
from pathlib import Path

import pytest

import deadwood
from deadwood import stages
from deadwood.config import RunConfig
from deadwood.methods import cut_methods, get_method, method_sections, methods
from conftest import tiny

PACKAGE = Path(deadwood.__file__).resolve().parent
FACES = ("deadwood.cli", "deadwood.bench", "deadwood_app", "streamlit")  # what the engine must not import


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
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
    assert set(method_sections()) == {m.section for m in methods() if m.section} == {
        "deadwooding", "hydra", "hydra_adam"}
    assert set(cut_methods()) == {"deadwooding", "magnitude"}
    # The key of a method ignores every other method's section, as the registry says.
    base = tiny(method="magnitude", budget="finetune")
    other = deadwood.with_updates(base, **{"deadwooding.epochs": 99, "hydra.epochs": 99})
    assert other.key() == base.key()
    # Under the matched budget the solve's epochs set every method's budget, and so its key.
    matched = tiny(method="magnitude")
    assert deadwood.with_updates(matched, **{"deadwooding.epochs": 99}).key() != matched.key()
    assert deadwood.with_updates(matched, **{"hydra.epochs": 99}).key() == matched.key()
    assert deadwood.with_updates(tiny(method="hydra"), **{"hydra.epochs": 1}).key() != tiny(method="hydra").key()
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
