"""The README's results table is the project's public claim: every cell must be what the stored same-budget
grids measured (``notebooks/10_fair_fight_grid.json``, condensed from each grid's ``bench.json`` by
``benchmarks/fair_fight_summary.py``), from complete grids of three seeds under PGD-10 and AutoAttack."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = {"digits": "digits / MLP", "mnist": "MNIST / LeNet-5"}
METHODS = ("deadwooding", "gmp", "harp", "magnitude", "hydra")


def _stored():
    return json.loads((ROOT / "notebooks" / "10_fair_fight_grid.json").read_text())


def _readme_rows() -> dict[tuple[str, str], list[str]]:
    """``(data / model, method) -> [cells]`` of the README's same-budget table."""
    text = (ROOT / "README.md").read_text()
    results = text[text.index("## Results"):text.index("**The earlier same-fine-tune table**")]
    rows = {}
    for line in results.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in DATA.values():
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def _cell(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def test_every_cell_of_the_readme_table_is_what_the_stored_grids_measured():
    stored, rows = _stored(), _readme_rows()
    matched = {g["grid"]["dataset"]: g for g in stored["grids"] if g["grid"]["budget"] == "matched"}
    assert set(matched) == set(DATA)
    expected = {}
    for dataset, g in matched.items():
        assert g["complete"] and not g["failures"] and g["grid"]["seeds"] == [0, 1, 2]
        assert g["evaluation"]["attack_samples"] >= 100
        by = {(e["method"], e["sparsity"]): e for e in g["summary"]}
        for m in METHODS:
            expected[(DATA[dataset], m)] = [_cell(by[(m, k)][key]) for k in (0.95, 0.99)
                                           for key in ("robust_accuracy", "autoattack_accuracy")]
    assert rows == expected


def test_the_readme_names_the_commit_the_grids_ran_from():
    commit = _stored()["commit"]
    assert re.fullmatch(r"[0-9a-f]{7,40}", commit)
    text = (ROOT / "README.md").read_text()
    assert f"ran from commit {commit}" in text
    assert commit in (ROOT / "docs" / "benchmarks.md").read_text()
