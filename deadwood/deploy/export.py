"""Export a finished run's pruned network to a file, in one of four formats.

- ``state_dict``: the plain state_dict with pruned weights stored as zeros (``model.pt`` as is);
  load with ``model.load_state_dict(torch.load(path, weights_only=True))``;
- ``prune``: the form ``torch.nn.utils.prune`` keeps, ``<layer>.weight_orig`` and
  ``<layer>.weight_mask`` for every prunable weight; load after ``prune.identity(layer, "weight")``
  on those layers (:func:`load_export` does both);
- ``sparse``: every prunable weight as a ``torch.sparse_csr`` matrix (convolutions in their GEMM form
  ``out x in*kh*kw``) with int32 indices, everything else dense: the smallest of the torch files at
  high sparsity (8 bytes per kept weight against 4 per weight); :func:`load_export` puts it back into
  the model class;
- ``onnx``: ``torch.onnx.export`` (the dynamo exporter, opset 18, batch size dynamic) of the model with
  its zeros; before it is written, onnxruntime runs it on the whole test set and must give the torch
  model's predictions (:func:`deadwood.deploy.sparse_forms.agreement`). ONNX Runtime runs the weights dense.

Every file is written to a temporary name in the target folder and renamed into place, so a
failure leaves no partial file. Bad input (a missing or damaged checkpoint, an unknown format, a
target folder that is missing or not writable) is a one-line :class:`deadwood.errors.ExportError`
or :class:`deadwood.errors.RunFileError` before anything is written.

    deadwood export --run DIR --format state_dict|prune|sparse|onnx [--out PATH]
"""
from __future__ import annotations

import copy
import gzip
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import ExportError, RunFileError
from ..pruning.masks import Mask, prunable
from ..storage.files import atomic_write_bytes, load_state

FORMATS = ("state_dict", "prune", "sparse", "onnx")
SUFFIX = {"state_dict": ".pt", "prune": ".prune.pt", "sparse": ".sparse.pt", "onnx": ".onnx"}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    return fmt


def default_path(run_dir, fmt: str) -> Path:
    """``<run>/model<suffix>``: ``model.pt`` is the run's own file, so state_dict goes to ``export.pt``."""
    return Path(run_dir) / ("export.pt" if fmt == "state_dict" else f"model{SUFFIX[fmt]}")


def check_target(path) -> Path:
    """``path`` as a file to write: its folder must exist and be writable, and it must not be a folder."""
    path = Path(path)
    folder = path.parent
    if not folder.exists():
        raise ExportError(f"cannot write {path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: the folder {folder} is not writable")
    return path


def _layer_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module, _, attr = name.rpartition(".")
    return model.get_submodule(module), attr


def state_of(model: nn.Module, fmt: str) -> dict[str, torch.Tensor]:
    """The state_dict written for a torch format."""
    if fmt == "state_dict":
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if fmt == "prune":
        m = copy.deepcopy(model).cpu()
        Mask.from_model(m).to_prune_form(m)
        return {k: v.detach() for k, v in m.state_dict().items()}
    from .sparse_forms import _csr

    weights = set(prunable(model))
    return {k: (_csr(v.reshape(v.shape[0], -1)) if k in weights else v.detach().cpu())
            for k, v in model.state_dict().items()}


def torch_bytes(model: nn.Module, fmt: str) -> bytes:
    buf = io.BytesIO()
    torch.save(state_of(model, fmt), buf)
    return buf.getvalue()


def load_export(path, fmt: str, model: nn.Module) -> nn.Module:
    """Load a torch-format export into ``model`` (a freshly built instance of the run's model class,
    changed in place and returned, eval mode); ``weights_only=True``. For ``prune`` the layers carry
    ``torch.nn.utils.prune``'s reparametrisation afterwards (``prune.remove`` folds it)."""
    check_format(fmt)
    if fmt == "onnx":
        raise ExportError("an ONNX file loads into onnxruntime, not into a torch model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's note on validating loaded sparse tensors
        state = load_state(path)
    if fmt == "prune":
        for name in prunable(model):
            layer, attr = _layer_of(model, name)
            prune.identity(layer, attr)
    elif fmt == "sparse":
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        state = {k: (v.to_dense().reshape(shapes[k]) if v.layout != torch.strided and k in shapes else v)
                 for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ExportError(f"{path} is not a '{fmt}' export of this model: {str(e).splitlines()[0]}") from None
    return model.eval()


# --------------------------------------------------------------------------- ONNX

def onnx_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """``model`` through ``torch.onnx.export`` (dynamo, batch dimension dynamic), serialised."""
    import logging

    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install {' '.join(missing)} "
                          "(or deadwood[export])")
    model = copy.deepcopy(model).cpu().eval()
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(model, (example[:2],), None, dynamo=True, external_data=False,
                                        input_names=["x"], output_names=["logits"],
                                        dynamic_shapes=({0: batch},), verbose=False)
        except Exception as e:  # the exporter raises many types; one line names it
            raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    return program.model_proto.SerializeToString()


def onnx_check(data: bytes, model: nn.Module, x: torch.Tensor, batch: int = 256) -> dict:
    """onnxruntime (CPU) on ``x`` against the torch model: :func:`agreement` of their logits."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise ExportError("the ONNX check needs onnxruntime: pip install onnxruntime (or deadwood[export])") from None

    from .sparse_forms import agreement

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = torch.cat([torch.from_numpy(session.run(None, {name: x[i:i + batch].numpy()})[0])
                     for i in range(0, len(x), batch)])
    with torch.inference_mode():
        ref = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    return agreement(ref, got)


# --------------------------------------------------------------------------- the whole export

def export(run_dir, fmt: str, out=None) -> dict:
    """Write the run at ``run_dir`` in format ``fmt`` to ``out`` (default :func:`default_path`)
    atomically; returns ``path``, ``bytes`` and, for ONNX, the onnxruntime ``check``."""
    from ..storage.record import load_run

    check_format(fmt)
    path = check_target(out if out is not None else default_path(run_dir, fmt))
    loaded = load_run(run_dir)  # RunFileError, one line, for a missing or damaged checkpoint
    report = {"path": str(path), "format": fmt}
    if fmt == "onnx":
        from ..data.datasets import load_split

        cfg = loaded.config
        test = load_split(cfg, "test")
        data = onnx_bytes(loaded.model, test.x)
        check = onnx_check(data, loaded.model, test.x)
        if not check["same"]:
            raise ExportError(f"onnxruntime does not reproduce torch's predictions ({check['mismatches']} of "
                              f"{check['samples']} differ, max |Δlogit| {check['max_abs_diff']:.2e}): nothing written")
        report["check"] = check
    else:
        data = torch_bytes(loaded.model, fmt)
    try:
        atomic_write_bytes(path, data)
    except RunFileError as e:  # says which file and why
        raise ExportError(str(e)) from None
    report["bytes"] = len(data)
    return report


def sizes(loaded) -> dict[str, int]:
    """Bytes of every torch format of the run, and of ``model.pt`` gzipped (a fair comparison: zeros
    compress). ONNX's size is what :func:`export` reports (its export takes seconds)."""
    from ..storage.record import MODEL_FILE

    plain = (Path(loaded.path) / MODEL_FILE).read_bytes()
    out = {"state_dict": len(plain), "state_dict gzip": len(gzip.compress(plain, 6, mtime=0)),
           "prune": len(torch_bytes(loaded.model, "prune")), "sparse": len(torch_bytes(loaded.model, "sparse"))}
    return out
