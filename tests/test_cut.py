"""Stage 2 options: block-based column-row (BCR) masks and per-layer allocation, through config and CLI."""
import pytest
import torch

from deadwood import ConfigError, CutConfig, build_model, dataset_info, get_method, run, with_updates
from deadwood.pruning.bcr import bcr_cut, gemm_form
from deadwood.cli import main
from deadwood.pruning.masks import magnitudes, prunable
from deadwood.methods import PruneContext
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _assert_block_row_column(mask: torch.Tensor, block):
    """Every cut weight lies in a row or a column of its block that is cut whole."""
    m = gemm_form(mask.cpu())
    br, bc = block
    for i in range(0, m.shape[0], br):
        for j in range(0, m.shape[1], bc):
            b = m[i:i + br, j:j + bc]
            whole = (~b.any(1)).view(-1, 1) | (~b.any(0)).view(1, -1)
            assert not ((~b) & ~whole).any(), f"block ({i}, {j}) holds a lone cut weight"


def _model(name="mlp", dataset="digits", seed=0):
    return build_model(name, dataset_info(dataset), seed=seed)


@pytest.mark.parametrize("name,dataset,block", [("mlp", "digits", (8, 8)), ("mlp", "digits", (4, 16)),
                                                 ("convnet", "digits", (8, 8)), ("lenet5", "mnist", (6, 5))])
@pytest.mark.parametrize("sparsity", [0.3, 0.8, 0.95])
def test_bcr_mask_is_whole_block_rows_and_columns_at_the_requested_sparsity(name, dataset, block, sparsity):
    scores = magnitudes(_model(name, dataset))
    mask, report = bcr_cut(scores, sparsity, block)
    total = sum(s.numel() for s in scores.values())
    for n, m in mask.items():
        assert m.shape == scores[n].shape
        _assert_block_row_column(m, block)
    # Whole segments only: the cut lands within one segment of the target.
    assert abs(sum(mask.zeros().values()) - round(sparsity * total)) <= max(block) / 2 + 1
    assert report["rows_cut"] > 0 and report["columns_cut"] > 0 and report["block"] == list(block)


def test_bcr_cuts_the_lowest_norm_segments_first():
    w = torch.ones(4, 4)
    w[1] = 0.1  # a weak row
    w[:, 2] = 0.2  # a weak column (its crossing with row 1 stays 0.2)
    mask, _ = bcr_cut({"w": w}, 7 / 16, (4, 4))
    want = torch.ones(4, 4, dtype=torch.bool)
    want[1], want[:, 2] = False, False
    assert torch.equal(mask["w"], want)


def test_bcr_per_layer_counts_and_collapse_guard():
    scores = magnitudes(_model())
    counts = {n: s.numel() // 2 for n, s in scores.items()}
    mask, _ = bcr_cut(scores, 0.5, (8, 8), counts=counts)
    for n, z in mask.zeros().items():
        assert abs(z - counts[n]) <= 8
    plain, _ = bcr_cut(scores, 0.99, (8, 8))
    assert any(int(m.sum()) == 0 for m in plain.values()), "the unguarded cut should empty a layer here"
    guarded, report = bcr_cut(scores, 0.99, (8, 8), min_keep=8)
    assert all(int(m.sum()) >= 8 for m in guarded.values()) and report["guarded"]
    total = sum(s.numel() for s in scores.values())
    assert abs(sum(guarded.zeros().values()) - round(0.99 * total)) <= 8
    for m in guarded.values():
        _assert_block_row_column(m, (8, 8))


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("updates,message", [
    ({"cut.granularity": "blocks"}, "unknown cut granularity 'blocks'"),
    ({"cut.block_rows": 0}, "cut.block_rows must be a whole number >= 1"),
    ({"cut.allocation": "best"}, "unknown cut allocation 'best'"),
    ({"cut.granularity": "bcr", "method": "random"}, "cut options apply to the deadwooding and magnitude"),
    ({"cut.allocation": "bound", "model": "convnet", "method": "magnitude"},
     "cut allocation 'bound' needs model 'mlp'"),
])
def test_cut_config_errors_are_one_line(updates, message):
    with pytest.raises(ConfigError, match=message) as e:
        with_updates(tiny(), **updates)
    assert "\n" not in str(e.value)


def test_default_cut_leaves_magnitude_a_global_cut_and_uniform_equals_magnitude_layerwise():
    config = tiny(method="magnitude")
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())

    def mask_of(cfg):
        return get_method(cfg.method).prune(PruneContext(teacher, cfg, train, test, device)).mask

    from deadwood.pruning.masks import global_cut
    want, _ = global_cut(magnitudes(teacher), config.sparsity, config.min_keep)
    got = mask_of(config)
    assert all(torch.equal(got[n], want[n]) for n in want)
    uniform = mask_of(with_updates(config, **{"cut.allocation": "uniform"}))
    layerwise = mask_of(with_updates(config, method="magnitude-layerwise"))
    assert all(torch.equal(uniform[n], layerwise[n]) for n in uniform)
    bound = mask_of(with_updates(config, **{"cut.allocation": "bound", "sparsity": 0.99}))
    n = sum(m.numel() for m in bound.values())
    assert sum(bound.zeros().values()) == round(0.99 * n)


@pytest.mark.parametrize("method", ["magnitude", "deadwooding"])
def test_bcr_runs_end_to_end_and_the_saved_model_keeps_the_structure(method):
    loaded = run(tiny(method=method, sparsity=0.8, cut=CutConfig(granularity="bcr", block_rows=8, block_cols=4)))
    assert loaded.record.prune_info["granularity"] == "bcr"
    assert abs(loaded.record.global_sparsity - 0.8) < 0.01
    for n, p in prunable(loaded.model).items():
        _assert_block_row_column(p != 0, (8, 4))


def test_cli_takes_the_cut_flags(tmp_path, capsys):
    rc = main(["run", "--method", "magnitude", "--sparsity", "0.9", "--cut-granularity", "bcr",
               "--cut-block-rows", "4", "--cut-block-cols", "4", "--cut-allocation", "uniform",
               "--teacher-epochs", "2", "--finetune-epochs", "1", "--evaluation-samples", "50",
               "--evaluation-steps", "2", "--out", str(tmp_path / "r")])
    assert rc == 0
    import json
    rec = json.loads((tmp_path / "r" / "record.json").read_text())
    assert rec["config"]["cut"]["granularity"] == "bcr" and rec["prune_info"]["allocation"] == "uniform"
    for frac in rec["layer_sparsity"].values():
        assert abs(frac - 0.9) < 0.02
    assert main(["run", "--method", "random", "--cut-granularity", "bcr"]) == 2
    assert "cut options apply" in capsys.readouterr().err
