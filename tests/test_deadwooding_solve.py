"""``deadwooding.solve``: Stage 1 alone, the weights the global cut is about to act on."""
import pytest
import torch

from deadwood.pruning.masks import global_cut, magnitudes, prunable
from deadwood.methods import PruneContext
from deadwood.methods.deadwooding import method as deadwooding
from deadwood.pipeline import Cache, get_teacher, load_data
from conftest import tiny


def _context(config):
    device = torch.device("cpu")
    train, test = load_data(config, device)
    teacher, _ = get_teacher(config, train, test, device, Cache())
    return PruneContext(teacher, config, train, test, device)


def test_solve_leaves_the_weights_uncut_and_prune_is_solve_then_one_global_cut(fresh_cache):
    config = tiny(method="deadwooding", sparsity=0.9, seed=31)
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
    assert set(solved.info) == {"constraints", "teacher_adversarial_loss", "final_lambdas", "dual_every_steps",
                                "dual_step_per_update"}
    # digits at batch 64 is 23 steps an epoch: the default pace is one update per epoch by s
    assert (solved.info["dual_every_steps"], solved.info["dual_step_per_update"]) == (0, config.deadwooding.dual_step)

    # The same context, pruned: the mask is exactly the global cut of the solved weights
    # (the solve is deterministic on CPU for a fixed seed).
    result = deadwooding.prune(ctx)
    expected, report = global_cut(magnitudes(solved.student), config.sparsity, config.min_keep)
    assert all(torch.equal(result.mask[n], expected[n]) for n in expected)
    assert result.info["threshold"] == report["threshold"]
    assert result.info["final_lambdas"] == solved.info["final_lambdas"]


def test_dual_pace_keeps_the_per_epoch_rise_and_starts_within_the_first_epoch():
    from deadwood.methods.deadwooding.method import dual_pace

    # digits at batch 64: 23 steps an epoch, so the default is the paper group's once-per-epoch update
    assert dual_pace(23, 0.05, 1437, 64) == (0, 0.05)
    assert dual_pace(0, 0.05, 18000, 64) == (0, 0.05)
    # MNIST: 282 steps an epoch, updates every 23 steps whose steps add up to s per epoch
    every, step = dual_pace(23, 0.05, 18000, 64)
    assert every == 23 and step * 282 / 23 == pytest.approx(0.05)


def test_constraint_captures_do_not_outlive_a_step():
    """The hooks on every prunable layer keep activations for the step that reads them only: once
    the Lagrangian's backward is done, no layer output captured during the step (the attack's
    probe, the clean + adversarial pass, the teacher's pass) is still alive, and later forward
    passes (an accuracy check, fine-tuning's distillation) are not captured."""
    import weakref

    from deadwood.bench.throughput import synthetic_32x32
    from deadwood.config import RunConfig
    from deadwood.methods.deadwooding.method import primal_dual
    from deadwood.models.registry import build_model

    data = synthetic_32x32(8)
    teacher = build_model("resnet20", data.info, seed=0).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    ctx = PruneContext(teacher, RunConfig(batch_size=4), data, data, torch.device("cpu"))
    student = ctx.student().train()
    step = primal_dual(student, ctx, len(data))
    seen = []  # weak references to every output of every prunable layer of both models

    def watch(module, args, output):
        seen.append(weakref.ref(output))

    layers = deadwooding._modules_of(student, step.problem.layers)
    handles = [m.register_forward_hook(watch) for m in layers.values()]
    handles += [m.register_forward_hook(watch) for m in deadwooding._modules_of(teacher, step.problem.layers).values()]
    try:
        for _ in range(2):
            loss, _ = step.lagrangian(data.x[:4], data.y[:4])
            loss.backward()
            del loss
            assert seen and all(r() is None for r in seen), \
                f"{sum(r() is not None for r in seen)} of {len(seen)} captured activations outlived the step"
            seen.clear()
            with torch.no_grad():
                student(data.x)
                teacher(data.x)
            assert not step.problem.s_cap.out and not step.problem.t_cap.out
    finally:
        for h in handles:
            h.remove()
        step.close()
