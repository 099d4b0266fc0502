"""``deadwooding.solve``: Stage 1 alone, the weights the global cut is about to act on."""
import torch

from deadwood.masks import global_cut, magnitudes, prunable
from deadwood.methods import PruneContext, deadwooding
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _context(config):
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    return PruneContext(teacher, config, train, test, device)


def test_solve_leaves_the_weights_uncut_and_prune_is_solve_then_one_global_cut():
    config = tiny(method="deadwooding", sparsity=0.9, seed=31)  # a seed no other test uses: its own teacher
    ctx = _context(config)
    before = {k: v.clone() for k, v in ctx.teacher.state_dict().items()}

    solved = deadwooding.solve(ctx)
    assert all(torch.equal(before[k], v) for k, v in ctx.teacher.state_dict().items()), "the teacher was modified"
    assert [h["epoch"] for h in solved.history] == list(range(1, config.deadwooding.epochs + 1))
    weights = prunable(solved.student)
    total = sum(p.numel() for p in weights.values())
    zeros = sum(int((p == 0).sum()) for p in weights.values())
    assert zeros < 0.01 * total, "solve must not cut: the student should still be dense"
    # The solve moved the weights: the L1 objective fell below the teacher's.
    l1 = lambda m: sum(float(p.detach().abs().sum()) for p in prunable(m).values())  # noqa: E731
    assert l1(solved.student) < l1(ctx.teacher)
    assert set(solved.info) == {"constraints", "teacher_adversarial_loss", "final_lambdas"}

    # The same context, pruned: the mask is exactly the global cut of the solved weights
    # (the solve is deterministic on CPU for a fixed seed).
    result = deadwooding.prune(ctx)
    expected, report = global_cut(magnitudes(solved.student), config.sparsity, config.min_keep)
    assert all(torch.equal(result.mask[n], expected[n]) for n in expected)
    assert result.info["threshold"] == report["threshold"]
    assert result.info["final_lambdas"] == solved.info["final_lambdas"]
