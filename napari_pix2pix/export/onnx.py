"""Export the generator to ONNX: ``python -m napari_pix2pix export MODEL --format onnx --out model.onnx``.

The graph has one input ``input`` and one output ``output``, both ``[batch, channels, height,
width]`` float32 in the model's range [-1, 1], with dynamic batch, height and width (height and
width must be multiples of the model's ``size_multiple``, which the Predictor pads to).

It is traced in **eval mode** (dropout off, running batch-norm statistics): the deterministic
default of ``translate``. The paper's train-mode test-time behaviour (dropout on, batch
statistics) is not exported: it needs random numbers and batch statistics that an ONNX
inference graph does not reproduce; use the torch backend for ``--mode train``.

The file carries what a runtime needs to reproduce ``translate`` (``metadata_props``):
``format``, ``format_version``, ``model`` (ModelConfig JSON), ``training`` (TrainConfig JSON), ``data`` (normalisation of both
sides and what the model was trained on, JSON), ``norm_a``/``norm_b`` (the same mappings, JSON),
``task``, ``mode`` (``eval``), ``layout``, ``step``, ``library_version``, ``torch_version``,
``source_sha256``. :class:`~napari_pix2pix.backends.onnxruntime.OnnxRuntimeBackend` reads it.

Before the file is written, onnxruntime (when installed) runs it next to torch on a random
input; an export whose maximum absolute difference exceeds ``tolerance`` is refused. The write
is atomic: a failed export leaves nothing behind.

Needs ``onnx`` (``pip install 'napari-pix2pix[onnx]'``); the exporter is torch's TorchScript-based
``torch.onnx.export(..., dynamo=False)``, which needs no further package.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends.onnxruntime import FORMAT, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME
from . import ExportError, check_writable, load_model, write_failed

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote: ``path``, the ``opset`` and ``parity`` (maximum absolute
    difference to torch per checked input shape; empty when onnxruntime is not installed)."""

    path: Path
    opset: int
    parity: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("the onnx package is not installed, so ONNX files can't be written.",
                          "install it: pip install 'napari-pix2pix[onnx]'.") from None
    return onnx


def onnx_metadata(model) -> dict[str, str]:
    """The ``metadata_props`` of an exported model (all strings)."""
    import torch

    from .. import __version__

    data = dict(model.checkpoint.data or {})
    norm_a, norm_b = model.normalization("a"), model.normalization("b")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(model.config.to_dict()),
        "training": json.dumps(model.checkpoint.training.to_dict() if model.checkpoint.training else None),
        "data": json.dumps(data, default=str),
        "norm_a": json.dumps(norm_a.to_dict() if norm_a else None),
        "norm_b": json.dumps(norm_b.to_dict() if norm_b else None),
        "task": str(data.get("task", "translate")),
        "mode": "eval",
        "layout": (f"{INPUT_NAME}: [batch, {model.config.in_channels}, height, width] float32 in [-1, 1] "
                   f"(normalised by norm_a; height and width multiples of {model.config.size_multiple}); "
                   f"{OUTPUT_NAME}: [batch, {model.config.out_channels}, height, width] in [-1, 1] "
                   "(map back with norm_b)"),
        "size_multiple": str(model.config.size_multiple),
        "step": str(int(model.step)),
        "library_version": __version__,
        "torch_version": torch.__version__,
        "source_sha256": str(model.sha256 or ""),
    }


def trace_to_onnx(generator, in_channels: int, size_multiple: int, opset: int = DEFAULT_OPSET) -> bytes:
    """ONNX bytes of ``generator`` (eval mode, on the CPU, a copy: the caller's is untouched)
    with dynamic batch/height/width. Raises :class:`ExportError` when it can't be traced."""
    import torch

    with torch.inference_mode(False):
        gen = copy.deepcopy(generator).cpu().eval()
        side = max(2 * size_multiple, 32)
        example = torch.zeros(1, in_channels, side, side)
    axes = {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    try:
        # inference_mode(False): ComfyUI runs nodes under inference mode, which tracing refuses
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(gen, (example,), buf, dynamo=False, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
                              opset_version=int(opset), do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - tracing fails in many ways; all mean the same to a user
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
        raise ExportError(f"the generator could not be exported to ONNX (opset {opset}): "
                          f"{exc.__class__.__name__}: {first}",
                          "use a generator built by napari-pix2pix (unet_N, resnet_*blocks); a custom "
                          "generator must be traceable by torch.onnx.export (no data-dependent Python "
                          "control flow), or try another --opset.") from None
    return buf.getvalue()


def parity_check(generator, onnx_bytes: bytes, in_channels: int, size_multiple: int,
                 shapes=None, seed: int = 0) -> dict:
    """Maximum absolute difference between torch (eval mode, CPU, fp32) and onnxruntime for
    random inputs in [-1, 1] of ``shapes`` (default: a square and a non-square one).
    Returns ``{"HxW": error}``; empty when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    import torch

    m = max(size_multiple, 1)
    shapes = shapes or [(2 * m, 2 * m), (2 * m, 3 * m)]
    gen = copy.deepcopy(generator).cpu().eval()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    out = {}
    for h, w in shapes:
        x = rng.uniform(-1, 1, (1, in_channels, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = gen(torch.from_numpy(x)).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        out[f"{h}x{w}"] = float(np.abs(ref - got).max())
    return out


def export_onnx(model, out: str | os.PathLike, *, opset: int = DEFAULT_OPSET, check: bool = True,
                tolerance: float = PARITY_TOLERANCE) -> OnnxExport:
    """Write ``model`` (a :class:`~napari_pix2pix.model.Pix2PixModel` or a ``.safetensors``
    path) as an ONNX file at ``out``: eval-mode generator, dynamic batch/height/width, metadata
    for torch-free inference. With ``check`` (and onnxruntime installed) the graph is run next
    to torch first and refused when they differ by more than ``tolerance``."""
    from ..paths import atomic_write

    out = Path(out)
    check_writable(out)
    onnx = _import_onnx()
    model = load_model(model)
    raw = trace_to_onnx(model.generator, model.config.in_channels, model.config.size_multiple, opset)
    proto = onnx.load_from_string(raw)
    metadata = onnx_metadata(model)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "napari-pix2pix generator (eval mode); see metadata 'layout' and 'norm_a'/'norm_b'."
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"the exported ONNX graph does not pass onnx's checker: {exc}",
                          "try another --opset, or report this with the model's `info`.") from None
    data = proto.SerializeToString()
    parity = {}
    if check:
        parity = parity_check(model.generator, data, model.config.in_channels, model.config.size_multiple)
        worst = max(parity.values(), default=0.0)
        if worst > tolerance:
            raise ExportError(f"onnxruntime's output differs from torch's by up to {worst:.3g} "
                              f"(allowed {tolerance:g}), so the ONNX file was not written.",
                              "try another --opset, or use the torch backend for this model.")

    def write(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)

    try:
        path = atomic_write(out, write)
    except OSError as exc:
        raise write_failed(out, exc) from None
    return OnnxExport(path=path, opset=int(opset), parity=parity, metadata=metadata)
