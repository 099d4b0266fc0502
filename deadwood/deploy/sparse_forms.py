"""Execution forms of a pruned network: the same trained weights, run several ways.

- **dense**: the model as saved, zeros multiplied like any other weight;
- **sparse** (CSR): every ``nn.Linear`` computes ``W x`` with ``W`` a ``torch.sparse_csr`` matrix, and
  with ``convs=True`` every ``nn.Conv2d`` too, as the matrix product of its GEMM form
  (``out x in*kh*kw``) with the unfolded input (im2col). The unfold copies the input ``kh*kw``
  times, so a convolution pays only where its kernel is very sparse (the crossover sweep says where);
- **BCR-compacted**: each weight matrix (GEMM form) is tiled into ``block_rows x block_cols``
  blocks as :mod:`deadwood.pruning.bcr` cuts it; in every block only the rows and columns holding a
  nonzero are kept, as a small dense sub-block, and blocks with none are dropped. The layer runs
  one batched product per group of sub-blocks (padded to powers of two) with the input entries
  their columns read, added into the output rows they write: rows and columns cut inside a block are skipped,
  not multiplied by zero. Exact for any weights (every nonzero is in
  its block's sub-block); economical for BCR-cut ones, where a sub-block holds no zeros;
- **2:4 semi-structured** (``torch.sparse.to_sparse_semi_structured``): float16 on a CUDA GPU of
  compute capability 8.0 or newer; where the weights are not 2:4 (two nonzeros in every group of
  four along a row) the two largest of each group are kept, which changes the function, so its
  agreement is measured like the others'.

Each form is an ``nn.Module`` built from a copy of the model, and gives the dense model's
logits up to float32 summation order (see :func:`agreement`).
"""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

FORMS = ("dense", "sparse", "sparse-linear", "bcr", "semi-2:4")
LABELS = {"dense": "dense with zeros (model.pt)", "sparse": "CSR: Linear and Conv2d (im2col)",
          "sparse-linear": "CSR: Linear only, convolutions dense", "bcr": "BCR-compacted blocks",
          "semi-2:4": "2:4 semi-structured (CUDA, float16)"}


def _csr(m: torch.Tensor) -> torch.Tensor:
    """``m`` (2-D) as CSR with int32 indices (half the index bytes of int64; enough below 2**31 entries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta state"
        c = m.detach().to_sparse_csr()
        return torch.sparse_csr_tensor(c.crow_indices().int(), c.col_indices().int(), c.values(), c.shape)


class SparseLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` stored and multiplied as CSR (``W @ x^T``, transposed back)."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.weight = _csr(layer.weight)
        self.bias = None if layer.bias is None else layer.bias.detach().clone()
        self.in_features, self.out_features = layer.in_features, layer.out_features

    def forward(self, x):
        lead = x.shape[:-1]
        y = (self.weight @ x.reshape(-1, self.in_features).t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)


def _unfolded(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """The im2col columns of ``x`` for ``conv``: ``(in*kh*kw, batch*L)``, and the output's height, width."""
    cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # (B, K, L)
    h = (x.shape[2] + 2 * conv.padding[0] - conv.dilation[0] * (conv.kernel_size[0] - 1) - 1) // conv.stride[0] + 1
    w = (x.shape[3] + 2 * conv.padding[1] - conv.dilation[1] * (conv.kernel_size[1] - 1) - 1) // conv.stride[1] + 1
    return cols.transpose(0, 1).reshape(cols.shape[1], -1), h, w


def _folded(y: torch.Tensor, batch: int, h: int, w: int, bias) -> torch.Tensor:
    """``(out, batch*L)`` back to ``(batch, out, h, w)``, plus the bias."""
    out = y.reshape(y.shape[0], batch, h * w).permute(1, 0, 2).reshape(batch, y.shape[0], h, w)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _plain_conv(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros"
            and not isinstance(layer.padding, str))


class SparseConv2d(nn.Module):
    """A 2-D convolution as CSR(GEMM form) @ im2col(x)."""

    def __init__(self, layer: nn.Conv2d):
        super().__init__()
        self.conv = layer  # geometry only; the weight used is the CSR copy
        self.weight = _csr(layer.weight.reshape(layer.out_channels, -1))
        self.bias = None if layer.bias is None else layer.bias.detach().clone()

    def forward(self, x):
        cols, h, w = _unfolded(self.conv, x)
        return _folded(self.weight @ cols, x.shape[0], h, w, self.bias)


def _bucket(n: int) -> int:
    """The power of two at or above ``n``: sub-blocks are padded to it, so a layer has at most
    ``log2(block_rows) x log2(block_cols)`` groups (a group per exact size would be up to 64 small
    products, whose per-call overhead eager PyTorch pays one by one)."""
    return 1 << (n - 1).bit_length()


class BlockCompacted(nn.Module):
    """A weight matrix ``(out, k)`` kept as its blocks' nonzero rows x nonzero columns.

    Sub-blocks padded to the same size ``(kr, kc)`` (powers of two, :func:`_bucket`) form one group:
    ``rows`` ``(nb * kr)`` and ``cols`` ``(nb, kc)`` say where each writes and reads (padding writes
    to a scratch row ``out`` and reads column 0 with zero weights), ``sub`` ``(nb, kr, kc)`` holds
    it. ``forward(X)`` takes ``X`` as ``(k, n)`` and returns ``W X`` as ``(out, n)``: per group one
    batched product and one indexed add.
    """

    def __init__(self, m: torch.Tensor, block: tuple[int, int]):
        super().__init__()
        m = m.detach()
        (rows, cols), (br, bc) = m.shape, block
        self.out = rows
        nrb, ncb = -(-rows // br), -(-cols // bc)
        padded = m.new_zeros(nrb * br, ncb * bc)
        padded[:rows, :cols] = m
        tiles = padded.view(nrb, br, ncb, bc).permute(0, 2, 1, 3).reshape(nrb * ncb, br, bc)
        row_on, col_on = (tiles != 0).any(2), (tiles != 0).any(1)  # (blocks, br), (blocks, bc)
        kr, kc = row_on.sum(1), col_on.sum(1)
        # local indices of each block's kept rows (columns) first, in order
        row_idx = torch.argsort((~row_on).to(torch.int8), dim=1, stable=True)
        col_idx = torch.argsort((~col_on).to(torch.int8), dim=1, stable=True)
        first_row = (torch.arange(nrb * ncb) // ncb) * br
        first_col = (torch.arange(nrb * ncb) % ncb) * bc
        buckets = torch.tensor([_bucket(int(v)) if v else 0 for v in kr.tolist()]) * 16 + \
            torch.tensor([_bucket(int(v)) if v else 0 for v in kc.tolist()])
        self.groups = []
        for key in sorted(set(buckets.tolist()) - {0}):
            if key < 16:  # no kept row: an empty block
                continue
            b = (buckets == key).nonzero().flatten()
            br_k, bc_k = min(key // 16, br), min(key % 16, bc)
            r, c = row_idx[b, :br_k], col_idx[b, :bc_k]
            sub = torch.take_along_dim(torch.take_along_dim(tiles[b], r[:, :, None], 1), c[:, None, :], 2)
            r_pad = torch.arange(br_k)[None, :] >= kr[b, None]
            c_pad = torch.arange(bc_k)[None, :] >= kc[b, None]
            sub = sub.masked_fill(r_pad[:, :, None] | c_pad[:, None, :], 0).contiguous()
            r_glob = torch.where(r_pad, torch.full_like(r, rows), r + first_row[b, None])
            c_glob = torch.where(c_pad, torch.zeros_like(c), c + first_col[b, None])
            self.groups.append((r_glob.reshape(-1), c_glob, sub))
        self.executed = sum(sub.numel() for _, _, sub in self.groups)  # multiply-adds per input column

    def forward(self, x):
        n = x.shape[1]
        out = x.new_zeros(self.out + 1, n)
        for rows, cols, sub in self.groups:
            out.index_add_(0, rows, torch.bmm(sub, x[cols]).reshape(-1, n))
        return out[:self.out]


class BCRLinear(nn.Module):
    def __init__(self, layer: nn.Linear, block: tuple[int, int]):
        super().__init__()
        self.blocks = BlockCompacted(layer.weight, block)
        self.bias = None if layer.bias is None else layer.bias.detach().clone()
        self.in_features = layer.in_features

    def forward(self, x):
        lead = x.shape[:-1]
        y = self.blocks(x.reshape(-1, self.in_features).t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, y.shape[-1])


class BCRConv2d(nn.Module):
    def __init__(self, layer: nn.Conv2d, block: tuple[int, int]):
        super().__init__()
        self.conv = layer
        self.blocks = BlockCompacted(layer.weight.reshape(layer.out_channels, -1), block)
        self.bias = None if layer.bias is None else layer.bias.detach().clone()

    def forward(self, x):
        cols, h, w = _unfolded(self.conv, x)
        return _folded(self.blocks(cols), x.shape[0], h, w, self.bias)


def _replace(model: nn.Module, make) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` with every submodule ``make`` returns a replacement for replaced;
    and the names replaced."""
    out = copy.deepcopy(model).eval()
    done = []
    for name, module in list(out.named_modules()):
        new = make(module)
        if new is None or not name:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, child, new)
        done.append(name)
    return out, done


def sparse_form(model: nn.Module, convs: bool = True) -> tuple[nn.Module, list[str]]:
    """Linear layers (and plain convolutions when ``convs``) as CSR; the names converted."""
    def make(m):
        if isinstance(m, nn.Linear):
            return SparseLinear(m)
        if convs and _plain_conv(m):
            return SparseConv2d(m)
        return None

    return _replace(model, make)


def bcr_form(model: nn.Module, block: tuple[int, int]) -> tuple[nn.Module, list[str]]:
    """Linear layers and plain convolutions as BCR-compacted blocks; the names converted."""
    def make(m):
        if isinstance(m, nn.Linear):
            return BCRLinear(m, block)
        if _plain_conv(m):
            return BCRConv2d(m, block)
        return None

    return _replace(model, make)


# --------------------------------------------------------------------------- 2:4 on CUDA

def semi_structured_unavailable() -> str | None:
    """Why the 2:4 form cannot run here (None when it can)."""
    if not torch.cuda.is_available():
        return "not available: needs a CUDA GPU (compute capability 8.0 or newer); none here"
    major, minor = torch.cuda.get_device_capability()
    if major < 8:
        return f"not available: the GPU has compute capability {major}.{minor}, 2:4 needs 8.0 or newer"
    return None


def two_four(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``w`` with at most two nonzeros per group of four along each row (the two largest |w| kept),
    and the fraction of groups that already were 2:4 (1.0: exact, nothing changed)."""
    g = w.detach().reshape(-1, 4)
    keep = torch.zeros_like(g, dtype=torch.bool)
    keep.scatter_(1, g.abs().topk(2, dim=1).indices, True)
    already = float(((g != 0).sum(1) <= 2).float().mean())
    return (g * keep).reshape(w.shape), already


def semi_structured_form(model: nn.Module) -> tuple[nn.Module, list[str], float]:
    """The model in float16 on CUDA with every Linear weight that the 2:4 kernels take converted;
    the names converted and the fraction of groups of four that were already 2:4 in them."""
    from torch.sparse import to_sparse_semi_structured

    out = copy.deepcopy(model).half().cuda().eval()
    done, groups, already = [], 0, 0.0
    for name, m in out.named_modules():
        if isinstance(m, nn.Linear) and m.in_features % 64 == 0 and m.out_features % 32 == 0:
            w, ok = two_four(m.weight)
            try:
                m.weight = nn.Parameter(to_sparse_semi_structured(w), requires_grad=False)
            except (RuntimeError, ValueError):  # a shape the kernels refuse: the layer stays dense
                continue
            n = w.numel() // 4
            groups, already, done = groups + n, already + ok * n, done + [name]
    return out, done, (already / groups if groups else 1.0)


# --------------------------------------------------------------------------- counts and checks

def forward_once(model: nn.Module, x: torch.Tensor, select, on_output) -> None:
    """One inference pass of ``x[:1]`` with ``on_output(name, module, inputs, output)`` called for
    every module ``select(module)`` accepts (forward hooks, removed afterwards)."""
    handles = [m.register_forward_hook(lambda module, inp, out, name=n: on_output(name, module, inp, out))
               for n, m in model.named_modules() if select(m)]
    try:
        with torch.inference_mode():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()


def _positions(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Output positions per sample of every Linear (1) and Conv2d (height x width) of ``model``."""
    positions: dict[str, int] = {}

    def record(name, module, inp, out):
        positions[name] = out.shape[-1] * out.shape[-2] if isinstance(module, nn.Conv2d) else 1

    forward_once(model, x, lambda m: isinstance(m, (nn.Linear, nn.Conv2d)), record)
    return positions


def macs(model: nn.Module, x: torch.Tensor, bcr: nn.Module | None = None) -> dict[str, int]:
    """Multiply-accumulates per sample (a count of arithmetic, not a speed): ``dense`` of every
    weight, ``nonzero`` of the nonzero weights only (for a Linear ``out*in`` and ``nnz``, for a
    convolution the same times its output positions), ``nonzero_linear`` with the convolutions dense, and with ``bcr`` (:func:`bcr_form` of the
    model) ``bcr``, what that form executes: its sub-blocks, padding included."""
    positions = _positions(model, x)
    out = {"dense": 0, "nonzero": 0, "nonzero_linear": 0}
    for name, p in positions.items():
        m = model.get_submodule(name)
        out["dense"] += m.weight.numel() * p
        out["nonzero"] += int((m.weight != 0).sum()) * p
        out["nonzero_linear"] += (int((m.weight != 0).sum()) if isinstance(m, nn.Linear) else m.weight.numel()) * p
    if bcr is not None:
        out["bcr"] = 0
        for name, p in positions.items():
            m = bcr.get_submodule(name)
            out["bcr"] += (m.blocks.executed if isinstance(m, (BCRLinear, BCRConv2d)) else m.weight.numel()) * p
    return out


TOLERANCE = (1e-4, 1e-4)  # (absolute, relative to the largest |logit|): float32 summation order


def agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """How ``other``'s logits match ``reference``'s on the same inputs.

    ``same`` when every |difference| is within ``atol + rtol * max|reference|`` (:data:`TOLERANCE`)
    and the predicted classes differ only on samples whose top-two reference logits are closer
    than twice the largest difference (a tie that summation order may break either way).
    """
    ref, oth = reference.float().cpu(), other.float().cpu()
    diff = float((ref - oth).abs().max()) if ref.numel() else 0.0
    atol, rtol = TOLERANCE
    bound = atol + rtol * float(ref.abs().max()) if ref.numel() else atol
    differ = ref.argmax(1) != oth.argmax(1)
    top2 = ref.topk(2, dim=1).values if ref.shape[1] > 1 else ref.repeat(1, 2)
    ties = (top2[:, 0] - top2[:, 1]) <= 2 * diff
    return {"samples": len(ref), "mismatches": int(differ.sum()), "max_abs_diff": diff, "tolerance": bound,
            "same": diff <= bound and bool((~differ | ties).all())}
