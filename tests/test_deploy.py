"""Execution forms: each gives the dense model's predictions; the deployment section and its cache.

No timing is asserted here (timings on a shared machine belong in benchmarks): the tests check that
every form computes the same function, that the BCR form skips what it should, and that the
measurement is shaped, labelled and stored as documented.
"""
import json

import pytest
import torch

import deadwood
from deadwood.deploy import measure as deploy
from deadwood.deploy import sparse_forms as sf
from deadwood.pruning.bcr import bcr_cut
from deadwood.cli import main
from deadwood.pruning.masks import magnitudes, random_cut

from fakerun import fake_run


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as runs use: two threads on a shared 2-core machine spin against each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _pruned(model_name: str, dataset: str, granularity: str, sparsity: float):
    info = deadwood.dataset_info(dataset)
    model = deadwood.build_model(model_name, info, seed=0).eval()
    if granularity == "bcr":
        mask, _ = bcr_cut(magnitudes(model), sparsity, (4, 4))
    else:
        mask, _ = random_cut(magnitudes(model), sparsity, torch.Generator().manual_seed(0))
    mask.apply(model)
    x = torch.rand((8, *info.input_shape), generator=torch.Generator().manual_seed(1))
    return model, x


def _logits(m, x):
    with torch.inference_mode():
        return m(x)


@pytest.mark.parametrize("model_name,dataset", [("mlp", "digits"), ("convnet", "digits"), ("lenet5", "mnist"), ("resnet20", "cifar10")])
@pytest.mark.parametrize("granularity", ["unstructured", "bcr"])
def test_every_form_gives_the_dense_predictions(model_name, dataset, granularity):
    model, x = _pruned(model_name, dataset, granularity, 0.8)
    dense = _logits(model, x)
    forms = {"sparse": sf.sparse_form(model, convs=True), "sparse-linear": sf.sparse_form(model, convs=False),
             "bcr": sf.bcr_form(model, (4, 4))}
    for name, (form, converted) in forms.items():
        assert converted, f"{name}: nothing converted"
        got = _logits(form, x)
        # float32, summed in another order: within 1e-4 + 1e-4 * max|logit| (sf.TOLERANCE), same classes
        assert (got - dense).abs().max() <= 1e-4 + 1e-4 * dense.abs().max(), name
        assert torch.equal(got.argmax(1), dense.argmax(1)), name
        assert sf.agreement(dense, got)["same"], name
    if model_name != "mlp":  # the convolutions are converted in one form and left dense in the other
        conv_names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
        assert conv_names <= set(forms["sparse"][1]) and not conv_names & set(forms["sparse-linear"][1])


def test_bcr_compaction_executes_only_the_kept_rows_and_columns():
    m = torch.zeros(16, 16)
    m[1, 8:12] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # block (0, 1): rows 1 and 6, columns 8..11
    m[6, 8:12] = torch.tensor([5.0, 6.0, 7.0, 8.0])
    blocks = sf.BlockCompacted(m, (8, 8))
    assert blocks.executed == 2 * 4 and len(blocks.groups) == 1  # one 2x4 sub-block, the rest skipped
    x = torch.randn(16, 3)
    assert torch.allclose(blocks(x), m @ x)


def test_agreement_flags_a_changed_prediction_and_passes_a_rounding_difference():
    ref = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    assert sf.agreement(ref, ref + 1e-6)["same"]
    flipped = ref.clone()
    flipped[0] = torch.tensor([1.0, 2.0, 0.0])
    a = sf.agreement(ref, flipped)
    assert not a["same"] and a["mismatches"] == 1 and a["max_abs_diff"] == 1.0


def test_two_four_keeps_the_two_largest_of_each_group_and_counts_what_was_already_2_4():
    w = torch.tensor([[1.0, -3.0, 2.0, 0.5, 0.0, 0.0, 7.0, 0.0]])
    out, already = sf.two_four(w)
    assert torch.equal(out, torch.tensor([[0.0, -3.0, 2.0, 0.0, 0.0, 0.0, 7.0, 0.0]]))
    assert already == 0.5


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_semi_structured_is_reported_not_available_without_cuda():
    assert sf.semi_structured_unavailable().startswith("not available")


def test_macs_are_counts_of_dense_and_nonzero_weights():
    model, x = _pruned("mlp", "digits", "unstructured", 0.9)
    counts = sf.macs(model, x)
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    nonzero = sum(int((w != 0).sum()) for w in weights)
    assert counts == {"dense": sum(w.numel() for w in weights), "nonzero": nonzero, "nonzero_linear": nonzero}


def test_macs_count_a_convolution_at_every_output_position():
    model, x = _pruned("lenet5", "mnist", "unstructured", 0.9)
    counts = sf.macs(model, x)
    conv1, conv2 = model[1], model[4]  # 28x28 padded to 32: outputs 28x28, then 10x10 after the pool
    fc = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counts["dense"] == conv1.weight.numel() * 28 * 28 + conv2.weight.numel() * 10 * 10 + fc
    fc_nz = sum(int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert counts["nonzero_linear"] == conv1.weight.numel() * 28 * 28 + conv2.weight.numel() * 10 * 10 + fc_nz


def test_first_win_is_where_csr_stays_faster():
    s = (0.5, 0.9, 0.99)
    assert deploy._first_win(s, (0.5, 0.8, 1.2)) == pytest.approx(0.9 + 0.2 / 0.4 * 0.09)
    assert deploy._first_win(s, (1.1, 1.2, 1.3)) == 0.5
    assert deploy._first_win(s, (0.5, 1.2, 0.9)) is None  # loses at the top: no crossover
    assert deploy._first_win(s, (1.5, 0.8, 1.2)) == pytest.approx(0.9 + 0.2 / 0.4 * 0.09)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    config = deadwood.with_updates(deadwood.RunConfig(method="magnitude", sparsity=0.9),
                                   **{"cut.granularity": "bcr", "cut.block_rows": 4, "cut.block_cols": 4})
    return fake_run(tmp_path_factory.mktemp("deploy") / "run", config)


@pytest.fixture(scope="module")
def measured(run_dir):
    """The run's deployment section, measured once for this module with few repeats (no timing is asserted)."""
    return deploy.deployment(run_dir, repeats=2, warmup=1, batch_sizes=(1, 8), sweep=(0.5, 0.99), sweep_repeats=2)


def test_deployment_is_measured_checked_and_cached_in_the_record(run_dir, measured):
    d = measured
    forms = {r["form"]: r for r in d["forms"]}
    assert list(forms) == list(sf.FORMS)
    for name in ("dense", "sparse", "bcr"):
        r = forms[name]
        assert r["available"] and r["agreement"]["same"] and r["agreement"]["samples"] == d["test_samples"]
        assert set(r["latency_s"]) == {"1", "8"} and all(v > 0 for v in r["latency_s"].values())
    assert forms["dense"]["speedup"] == {"1": 1.0, "8": 1.0}
    assert forms["sparse"]["macs"] < forms["dense"]["macs"] and forms["bcr"]["macs"] >= forms["sparse"]["macs"]
    assert not forms["sparse-linear"]["available"]  # an MLP: no convolutions to leave dense
    if not torch.cuda.is_available():
        assert forms["semi-2:4"]["note"].startswith("not available")
    assert d["threads"] >= 1 and "count" in d["macs_note"]
    assert d["sizes"]["sparse"] < d["sizes"]["state_dict"]
    shapes = d["crossover"]["shapes"]
    assert [s["label"] for s in shapes] == ["Linear 64→256", "Linear 256→128", "Linear 128→10"]
    assert all(len(s["speedup"]["8"]) == 2 for s in shapes)
    stored = json.loads((run_dir / "record.json").read_text())["deployment"]
    assert stored["forms"] == json.loads(json.dumps(d["forms"]))
    # A second call is a look-up: the stored section comes back unchanged.
    assert deploy.deployment(run_dir, repeats=50) == stored


def test_deploy_command_prints_the_table(run_dir, measured, capsys):
    assert main(["deploy", "--run", str(run_dir)]) == 0  # already measured: read from the record
    out = capsys.readouterr().out
    assert "BCR-compacted blocks" in out and "MACs/sample (count)" in out and "not available" in out


def test_deploy_command_errors_are_one_line(tmp_path, capsys):
    assert main(["deploy", "--run", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "record.json is missing" in err
    assert main(["deploy", "--run", str(tmp_path), "--repeats", "0"]) == 2
    assert "--repeats must be >= 1" in capsys.readouterr().err


def test_charts_draw_every_form_mark_the_crossover_and_label_counts(measured):
    from app import charts_deploy as cd

    d = measured
    lat = cd.latency_figure(d)
    assert len(lat.data) == len(d["batch_sizes"])
    assert list(lat.data[0].x) == [r["label"] for r in d["forms"] if r["available"]]
    assert list(lat.data[1].text) == [f"{r['speedup']['8']:.2f}x" for r in d["forms"] if r["available"]]
    assert "a count" in lat.data[0].hovertemplate
    cross = cd.crossover_figure(d, 8)
    won = [s for s in d["crossover"]["shapes"] if s["crossover"]["8"] is not None]
    vlines = [s for s in cross.layout.shapes if s.x0 == s.x1]
    assert sorted(v.x0 for v in vlines) == sorted(s["crossover"]["8"] for s in won)
    # Hand-made sweep: CSR loses at 0.5, wins from 0.9: the tick sits where the line crosses 1.
    fake = {"crossover": {"batch_sizes": [4], "shapes": [{"label": "Linear 2→2", "sparsities": [0.5, 0.9],
                                                          "speedup": {"4": [0.5, 1.5]}, "crossover": {"4": 0.7},
                                                          "batch": {"4": 4}, "run_sparsity": {"0": 0.8}}]}}
    fig = cd.crossover_figure(fake)
    assert [s.x0 for s in fig.layout.shapes if s.x0 == s.x1] == [0.7]
    assert fig.data[1].y[0] == pytest.approx(1.25)  # this run's layer at 0.8, on the measured line
    sizes = cd.size_figure(d)
    assert list(sizes.data[0].x) == [v / 1024 for v in d["sizes"].values()]
    rows = cd.form_rows(d)
    assert [r["execution"] for r in rows] == [sf.LABELS[k] for k in sf.FORMS]


def test_live_panel_offers_a_button_then_shows_the_cached_measurement(run_dir, measured, tmp_path):
    from streamlit.testing.v1 import AppTest

    def page(folder):
        from app.deploy_panel import what_the_cut_buys

        what_the_cut_buys(folder)

    fresh = fake_run(tmp_path / "fresh", deadwood.RunConfig(method="magnitude", sparsity=0.9))
    at = AppTest.from_function(page, args=(fresh,), default_timeout=60).run()
    assert not at.exception and at.button(key="deploy_measure")  # nothing measured: a button, no numbers
    assert not at.dataframe
    at = AppTest.from_function(page, args=(run_dir,), default_timeout=60).run()  # measured: drawn from the record
    assert not at.exception and at.subheader[0].value == "What the cut buys"
    assert len(at.dataframe[0].value) == len(sf.FORMS)
    assert len(at.get("plotly_chart")) == 3  # latency, sizes, crossover


def test_bench_deployment_section_one_entry_per_method_and_sparsity(tmp_path):
    from deadwood.bench import markdown
    from deadwood.bench.deployment import deployment_lines, measure_deployment

    rows = []
    for method in ("magnitude", "random"):
        for sparsity in (0.9, 0.99):
            for seed in (0, 1):
                name = f"runs/{method}-{sparsity:g}-seed{seed}"
                if seed == 0:  # only the first seed is measured: the others need no files
                    fake_run(tmp_path / name, deadwood.RunConfig(method=method, sparsity=sparsity, seed=seed))
                rows.append({"method": method, "sparsity": sparsity, "seed": seed, "run": name})
    section = measure_deployment(rows, tmp_path, repeats=1, warmup=1, sweep=(0.5, 0.99), sweep_repeats=1)
    assert [(e["method"], e["sparsity"]) for e in section["entries"]] == [
        ("magnitude", 0.9), ("magnitude", 0.99), ("random", 0.9), ("random", 0.99)]
    assert all(e["forms"]["sparse"]["agreement"]["same"] for e in section["entries"])
    assert [s["label"] for s in section["crossover"]["shapes"]][0] == "Linear 64→256"
    lines = deployment_lines(section)
    assert sum(line.startswith("| magnitude |") or line.startswith("| random |") for line in lines) == 4
    assert "## Deployment" not in markdown({"grid": {"dataset": "d", "model": "m", "epsilon": 0.1, "seeds": [0],
                                                     "points": 0}, "complete": True, "rows": [],
                                            "evaluation": {}})  # off by default: no section
