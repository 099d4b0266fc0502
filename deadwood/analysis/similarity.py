"""Representation similarity of pruned and dense models: SVCCA (Raghu et al., NeurIPS 2017).

Blakeney et al. ("Is Pruning Compression?", WACV 2020) compare each layer of a pruned
network with the same layer of its dense parent, next to controls. :func:`svcca_similarity`
is the measure; :func:`layer_similarity` applies it layer by layer; :func:`similarity_study`
runs the comparison for a set of methods with the paper's contrasts.

Activations are the outputs of every prunable layer (the ``h_l`` of Deadwooding's
representation constraints). A convolution's channels are its neurons and every
(sample, position) a data point, as in Raghu et al.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..events import emit
from ..pruning.masks import Mask, prunable


def _reduce(a: np.ndarray, keep_variance: float) -> np.ndarray:
    """An orthonormal basis (n x k) of the top singular directions of centred ``a`` that
    explain ``keep_variance`` of its variance (numerically zero directions always dropped)."""
    a = a - a.mean(0, keepdims=True)
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        return u[:, :0]
    s = s[s > s[0] * 1e-10]
    var = s ** 2
    frac = np.cumsum(var) / var.sum()
    k = int(np.searchsorted(frac, keep_variance - 1e-12) + 1)
    return u[:, :min(k, len(s))]


def canonical_correlations(a, b, keep_variance: float = 0.99) -> np.ndarray:
    """The canonical correlations (descending) between the SVD-reduced ``a`` and ``b``."""
    a, b = (np.asarray(torch.as_tensor(x).detach().cpu().double()) for x in (a, b))
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"need two (samples x neurons) matrices with the same samples, got {a.shape} and {b.shape}")
    if not 0 < keep_variance <= 1:
        raise ValueError(f"keep_variance must be in (0, 1], got {keep_variance}")
    qa, qb = _reduce(a, keep_variance), _reduce(b, keep_variance)
    if qa.shape[1] == 0 or qb.shape[1] == 0:
        return np.zeros(0)
    # For orthonormal bases of two subspaces, the singular values of Qa^T Qb are the
    # cosines of the principal angles: exactly the canonical correlations.
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


def svcca_similarity(a, b, keep_variance: float = 0.99) -> float:
    """SVCCA of two activation matrices (samples x neurons): centre each, keep the SVD
    directions explaining ``keep_variance`` of its variance, run CCA between the two
    reduced sets, and return the mean canonical correlation (nan if either is constant).

    CCA is invariant to invertible linear maps of either side; the SVD step keeps that
    invariance whenever it keeps the whole column space (``keep_variance=1``, or data
    whose variance is spread over all its directions).
    """
    rho = canonical_correlations(a, b, keep_variance)
    return float(rho.mean()) if rho.size else float("nan")


# --------------------------------------------------------------------------- models

def _as_rows(out: torch.Tensor) -> torch.Tensor:
    if out.dim() > 2:  # (N, C, H, W) -> (N·H·W, C): channels are the neurons
        return out.transpose(0, 1).flatten(1).T
    return out.flatten(1)


@torch.no_grad()
def layer_activations(model: nn.Module, x: torch.Tensor, layers=None, max_rows: int = 5000,
                      seed: int = 0) -> dict[str, torch.Tensor]:
    """The output of every prunable layer (or of ``layers``) on inputs ``x``, as
    (data points x neurons); at most ``max_rows`` rows, chosen by a seeded draw that is
    the same for any two models of one architecture."""
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else list(prunable(model))
    out: dict[str, torch.Tensor] = {}
    hooks = [modules[n.rpartition(".")[0]].register_forward_hook(
        lambda m, args, o, n=n: out.__setitem__(n, _as_rows(o).float().cpu())) for n in names]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    gen = torch.Generator().manual_seed(seed)
    for n, a in out.items():
        if len(a) > max_rows:
            out[n] = a[torch.randperm(len(a), generator=gen)[:max_rows]]
    return out


def layer_similarity(model: nn.Module, reference: nn.Module, x: torch.Tensor, keep_variance: float = 0.99,
                     max_rows: int = 5000) -> dict[str, float]:
    """SVCCA between ``model`` and ``reference`` at every prunable layer, on inputs ``x``."""
    a = layer_activations(model, x, max_rows=max_rows)
    b = layer_activations(reference, x, max_rows=max_rows)
    return {n: svcca_similarity(a[n], b[n], keep_variance) for n in a}


# --------------------------------------------------------------------------- contrasts

def matched_random_mask(mask: Mask, generator: torch.Generator) -> Mask:
    """A uniformly random mask with exactly as many kept weights in each layer as ``mask``."""
    out = {}
    for n, m in mask.items():
        keep = torch.zeros(m.numel(), dtype=torch.bool)
        keep[torch.randperm(m.numel(), generator=generator)[:int(m.sum())]] = True
        out[n] = keep.view(m.shape).to(m.device)
    return Mask(out)


def train_from_scratch(config, train, test, *, seed: int, mask: Mask | None = None, on_event=None) -> nn.Module:
    """A fresh model (initialised with ``seed``) trained with the teacher's recipe
    (``config.teacher``), under ``mask`` when given (pruned weights stay zero)."""
    from ..config import with_updates
    from ..models.registry import model_for
    from ..train import adversarial_step, natural_step, run_epochs
    from ..robustness.accuracy import accuracy

    cfg = with_updates(config, seed=seed)
    tc = cfg.teacher
    model = model_for(cfg, seed=seed).to(train.x.device)
    if mask is not None:
        mask.apply(model)
    gen = torch.Generator().manual_seed(seed + 5)
    step = (natural_step(model) if tc.attack == "none" or cfg.teacher_epsilon == 0
            else adversarial_step(model, tc.attack, cfg.teacher_epsilon, tc.pgd_steps, gen))
    run_epochs(model, train, step, stage="teacher", epochs=tc.epochs, lr=tc.lr, batch_size=cfg.batch_size,
               seed=seed, on_event=on_event, mask=mask, end_epoch=lambda e: {"accuracy": accuracy(model, test)},
               weight_decay=tc.weight_decay, amp=cfg.amp)
    return model.eval()


def similarity_study(config, methods=("deadwooding", "magnitude", "random"), *, contrasts: bool = True,
                     samples: int = 500, keep_variance: float = 0.99, on_event=None, cache_dir=None) -> dict:
    """Per-layer SVCCA to the dense teacher for each method at ``config``'s sparsity, with
    Blakeney et al.'s references:

    - ``dense, another seed``: the teacher's recipe from another initialisation (the
      similarity two equally good dense models reach);
    - ``magnitude mask, re-initialised and retrained``: the magnitude cut's mask on a fresh
      initialisation, trained from scratch under the mask;
    - ``random mask, matched per-layer sparsity``: the teacher under a random mask with the
      magnitude cut's per-layer counts, then the shared Stage 3 fine-tune.

    Returns ``{"layers": [...], "similarity": {name: {layer: svcca}}, "accuracy": {name: acc}}``.
    Runs come from ``cache_dir`` (default: the engine's cache) when present; progress goes to
    ``on_event``: the runs' and the references' training events, and one 'epoch' of stage 'svcca'
    per model compared.
    """
    from ..config import with_updates
    from ..pruning.cut import cut
    from ..pruning.masks import magnitudes
    from ..device import resolve_device
    from ..pipeline import finetune, load_data, run
    from ..robustness.accuracy import accuracy

    device = resolve_device(config.device)
    train, test = load_data(config, device)
    probe = test.subset(samples, config.seed)
    sims: dict[str, dict[str, float]] = {}
    accs: dict[str, float] = {}
    teacher = None
    compared, total = 0, len(methods) + (3 if contrasts else 0)

    def one_more() -> None:
        nonlocal compared
        compared += 1
        emit(on_event, "epoch", "svcca", compared, total)
        if compared == total:
            emit(on_event, "end", "svcca", total, total)

    emit(on_event, "start", "svcca", 0, total)
    for m in methods:
        loaded = run(with_updates(config, method=m), on_event=on_event, cache_dir=cache_dir)
        if teacher is None:
            teacher = loaded.dense().to(device)
        model = loaded.model.to(device)
        sims[m] = layer_similarity(model, teacher, probe.x, keep_variance)
        accs[m] = accuracy(model, test)
        one_more()
    if teacher is None:
        teacher = run(with_updates(config, method="dense"), on_event=on_event, cache_dir=cache_dir).dense().to(device)
    accs["teacher"] = accuracy(teacher, test)
    if contrasts:
        twin = train_from_scratch(config, train, test, seed=config.seed + 1000, on_event=on_event)
        sims["dense, another seed"] = layer_similarity(twin, teacher, probe.x, keep_variance)
        accs["dense, another seed"] = accuracy(twin, test)
        one_more()

        mag_config = with_updates(config, method="magnitude")
        mask, _ = cut(magnitudes(teacher), mag_config)
        reinit = train_from_scratch(config, train, test, seed=config.seed + 2000, mask=mask, on_event=on_event)
        name = "magnitude mask, re-initialised and retrained"
        sims[name] = layer_similarity(reinit, teacher, probe.x, keep_variance)
        accs[name] = accuracy(reinit, test)
        one_more()

        rand_mask = matched_random_mask(mask, torch.Generator().manual_seed(config.seed + 3000))
        student = copy.deepcopy(teacher)
        for p in student.parameters():
            p.requires_grad_(True)
        rand_mask.apply(student)
        finetune(student, teacher, rand_mask, config, train, test, on_event)
        name = "random mask, matched per-layer sparsity"
        sims[name] = layer_similarity(student.eval(), teacher, probe.x, keep_variance)
        accs[name] = accuracy(student, test)
        one_more()
    return {"layers": list(next(iter(sims.values()))), "similarity": sims, "accuracy": accs,
            "sparsity": config.sparsity, "samples": len(probe)}
