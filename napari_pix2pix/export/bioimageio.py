"""Export a model as a bioimage.io model package (spec 0.5): ``export MODEL --format bioimageio --out DIR|X.zip``.

The package holds ``rdf.yaml`` (model spec 0.5), TorchScript weights (``weights.pt``) and, when
``onnx`` is installed, ONNX weights (``weights.onnx``, parent: torchscript), a test input and
output (``test_input.npy``, ``test_output.npy``), a cover (input | output, ``cover.png``) and a
documentation file (``README.md``). Consumers: bioimageio.core, Fiji/deepImageJ, ilastik, QuPath.

Axes: ``input`` and ``output`` are ``[batch, channel, y, x]`` float32; y and x are any multiple of
the model's ``size_multiple`` (no tiling in the package: the consumer tiles, if it does).

Pre- and post-processing express our normalisation with the spec's operations:

* intensities (percentile over the dataset, fixed, none): ``scale_linear`` with
  ``gain = 2 / (high - low)``, ``offset = -2 low / (high - low) - 1`` (the same affine map;
  computed in float32 in a different order, so it differs by float rounding only);
* per-image percentiles: ``scale_range`` (same percentiles, over channel, y and x; the spec adds
  ``eps = 1e-6`` to the span) then ``scale_linear`` (gain 2, offset -1);
* binary labels: ``binarize`` (threshold 0: id > 0) then ``scale_linear`` (gain 2, offset -1),
  exact; scaled labels: ``clip`` then ``scale_linear``;
* the output: ``scale_linear`` back to the target's data range (``binarize`` at 0 for binary
  labels). The package's output is float32: ``translate`` additionally rounds and clips to the
  target's integer dtype (a difference of at most 0.5 per pixel, plus clipping).

One-hot label inputs or outputs (argmax) can't be written with the spec's operations and are
refused. ``README.md`` in the package reports the measured difference between the package's
pipeline (emulated in float32) and ``translate`` on the test image; the test suite checks the
package with ``bioimageio.core``'s model test, offline.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ExportError, check_writable, load_model, write_failed

SPEC_VERSION = "0.5.12"  # what bioimageio.spec 0.5.12.0 (pinned by bioimageio.core 0.11.0) implements
PIX2PIX_CITATION = {"text": "Isola, Zhu, Zhou, Efros. Image-to-Image Translation with Conditional Adversarial "
                            "Networks. CVPR 2017.", "doi": "10.1109/CVPR.2017.632"}
DEFAULT_TEST_IMAGE = Path(__file__).resolve().parents[1] / "sample_data" / "nuclei-2d" / "img2d.tif"


@dataclass
class BioimageioExport:
    """What :func:`export_bioimageio` wrote: ``path`` (folder or .zip), the ``weights`` formats and
    ``parity``: maximum absolute differences measured on the test image (``torchscript``,
    ``onnx``: weights vs the torch generator in model space; ``pipeline``: the package's
    pre/post-processing emulated in float32 vs ``translate``'s float32 output, in data units)."""

    path: Path
    weights: list
    parity: dict = field(default_factory=dict)
    rdf: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- normalisation ops
def _affine_pre(norm) -> tuple[list, str]:
    """Preprocessing ops for side A and a note on how exact they are."""
    if norm.is_labels:
        if norm.label_encoding == "binary":
            return ([{"id": "binarize", "kwargs": {"threshold": 0.0}},
                     {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": -1.0}}],
                    "binary labels: binarize at 0, then 2 x - 1 (exact)")
        if norm.label_encoding == "scaled":
            top = max(float(norm.high), 1.0)
            return ([{"id": "clip", "kwargs": {"min": 0.0, "max": top}},
                     {"id": "scale_linear", "kwargs": {"gain": 2.0 / top, "offset": -1.0}}],
                    f"scaled labels: clip to 0..{top:g}, then linear to [-1, 1] (float rounding only)")
        raise ExportError("one-hot label inputs can't be expressed with bioimage.io's preprocessing operations.",
                          "export to ONNX instead (--format onnx), which the Predictor normalises exactly.")
    if norm.mode == "percentile" and norm.per_image:
        lo, hi = norm.percentiles or (1.0, 99.8)
        return ([{"id": "scale_range", "kwargs": {"axes": ["channel", "y", "x"], "min_percentile": float(lo),
                                                  "max_percentile": float(hi), "eps": 1e-6}},
                 {"id": "scale_linear", "kwargs": {"gain": 2.0, "offset": -1.0}}],
                f"per-image percentiles {lo:g}/{hi:g}: scale_range (span + 1e-6) then 2 x - 1")
    low, high = float(norm.low), float(norm.high)
    gain = 2.0 / (high - low)
    return ([{"id": "scale_linear", "kwargs": {"gain": gain, "offset": -low * gain - 1.0}}],
            f"{norm.mode}: data {low:g}..{high:g} -> -1..1 by one scale_linear (float rounding only)")


def _affine_post(norm) -> tuple[list, str]:
    """Postprocessing ops for side B and a note on how exact they are."""
    if norm.is_labels:
        if norm.label_encoding == "binary":
            return [{"id": "binarize", "kwargs": {"threshold": 0.0}}], "binary labels: output > 0 (exact)"
        if norm.label_encoding == "scaled":
            top = max(float(norm.high), 1.0)
            return ([{"id": "scale_linear", "kwargs": {"gain": top / 2.0, "offset": top / 2.0}},
                     {"id": "clip", "kwargs": {"min": 0.0, "max": top}}],
                    "scaled labels: linear back to ids and clipped, not rounded (differs by < 0.5)")
        raise ExportError("one-hot label outputs (argmax over channels) can't be expressed with bioimage.io's "
                          "postprocessing operations.",
                          "export to ONNX instead (--format onnx), which the Predictor de-normalises exactly.")
    low, high = float(norm.low), float(norm.high)
    half = (high - low) / 2.0
    kind = np.dtype(norm.dtype).kind
    note = f"-1..1 -> data {low:g}..{high:g} by one scale_linear; float32 output"
    if kind in "iub":
        note += f" (translate also rounds and clips to {norm.dtype}: differs by <= 0.5 inside its range)"
    return [{"id": "scale_linear", "kwargs": {"gain": half, "offset": low + half}}], note


def _apply_ops(x: np.ndarray, ops: list) -> np.ndarray:
    """The spec's operations as bioimageio.core applies them, in float32 (for the measured parity)."""
    x = x.astype(np.float32)
    for op in ops:
        kw = op["kwargs"]
        if op["id"] == "scale_linear":
            x = (x * np.float32(kw["gain"]) + np.float32(kw["offset"])).astype(np.float32)
        elif op["id"] == "binarize":
            x = (x > kw["threshold"]).astype(np.float32)
        elif op["id"] == "clip":
            x = np.clip(x, kw["min"], kw["max"]).astype(np.float32)
        elif op["id"] == "scale_range":
            out = np.empty_like(x)
            for i in range(x.shape[0]):
                lo, hi = np.percentile(x[i], [kw["min_percentile"], kw["max_percentile"]])
                out[i] = (x[i] - np.float32(lo)) / np.float32(hi - lo + kw["eps"])
            x = out
    return x


# ----------------------------------------------------------------------------------- helpers
def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9 _\-()]+", " ", text).strip() or "model"
    if len(name) < 5:  # the spec asks for at least 5 characters
        name = f"pix2pix {name}"
    return name[:120]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _test_image(model, image, norm_a) -> np.ndarray:
    """``[1, C, H, W]`` data-space test input (float32 of the data values), H and W multiples of
    the size multiple: the given image, the bundled nuclei image for 1-channel intensity models,
    or a smooth ramp over the normalisation's range."""
    from ..inference import check_array, to_model_layout

    m = model.config.size_multiple
    side = m * max(1, -(-128 // m))  # about 128 px, a multiple of m
    if image is None and model.config.in_channels == 1 and not norm_a.is_labels and DEFAULT_TEST_IMAGE.is_file():
        import tifffile

        image = tifffile.imread(DEFAULT_TEST_IMAGE)
    if image is not None:
        x, _ = to_model_layout(check_array(image), norm_a.channels)
        x = x[:1]
        h, w = x.shape[-2:]
        if h < m or w < m:
            raise ExportError(f"the test image ({h}x{w}) is smaller than the model's size multiple {m}.",
                              f"use a test image of at least {m}x{m} pixels.")
        th, tw = min(h // m, max(side // m, 1)) * m, min(w // m, max(side // m, 1)) * m
        y0, x0 = (h - th) // 2, (w - tw) // 2
        return np.ascontiguousarray(x[:, :, y0:y0 + th, x0:x0 + tw])
    yy, xx = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side), indexing="ij")
    base = 0.5 + 0.5 * np.sin(6 * yy) * np.cos(5 * xx)
    if norm_a.is_labels:
        top = max(int(norm_a.high), 1)
        data = np.rint(base * top)
    else:
        data = norm_a.low + base * (norm_a.high - norm_a.low)
    return np.broadcast_to(data, (1, norm_a.channels, side, side)).astype(np.float32).copy()


def _cover(inp: np.ndarray, out: np.ndarray, path: Path) -> None:
    """input | output as an RGB PNG (first three channels, percentile-scaled)."""
    from PIL import Image

    from ..render import contact_sheet, to_uint8

    def panel(a):
        a = np.moveaxis(a[0], 0, -1)
        return to_uint8(a if a.shape[-1] in (1, 3) else a[..., :1])

    Image.fromarray(contact_sheet([panel(inp), panel(out)], gap=0)).save(path)


def _readme(model, name: str, notes: dict, parity: dict, weights: list) -> str:
    cfg = model.config
    lines = [
        f"# {name}",
        "",
        f"A Pix2Pix generator ({cfg.generator}, ngf {cfg.ngf}, norm {cfg.norm}, {cfg.in_channels} -> "
        f"{cfg.out_channels} channels) trained with napari-pix2pix for {model.step} steps, exported in eval mode "
        "(dropout off, running batch-norm statistics). Weights: " + ", ".join(weights) + ".",
        "",
        "## Input and output",
        f"`input` and `output` are `[batch, channel, y, x]` float32; y and x must be multiples of "
        f"{cfg.size_multiple}. Pass the raw data values (as float32): the preprocessing maps them to the "
        "model's [-1, 1], the postprocessing maps the output back to the target's data range.",
        "",
        "## How this package differs from napari-pix2pix's translate",
        f"- preprocessing: {notes['pre']}",
        f"- postprocessing: {notes['post']}",
        "- no tiling: the consumer sends whole images (or tiles them itself).",
        "- the paper's train-mode test-time behaviour (dropout on) is not exported.",
        "",
        "Measured on the test image (maximum absolute difference):",
    ]
    for key, value in parity.items():
        lines.append(f"- {key}: {value:.3g}")
    lines += ["", "## Cite", f"{PIX2PIX_CITATION['text']} doi:{PIX2PIX_CITATION['doi']}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ export
def export_bioimageio(model, out: str | os.PathLike, *, test_image=None, name: str | None = None,
                      authors: list | None = None, license: str = "CC-BY-4.0", onnx: bool | None = None,
                      opset: int | None = None) -> BioimageioExport:
    """Write ``model`` (a :class:`~napari_pix2pix.model.Pix2PixModel` or a ``.safetensors`` path)
    as a bioimage.io model package at ``out``: a new (or empty) folder, or a ``.zip`` file.

    ``test_image``: a data-space image (``[Y, X(, C)]``) for the test tensors and the cover
    (default: the bundled nuclei image, or a synthetic one). ``onnx``: also write ONNX weights
    (default: when the onnx package is installed). Nothing partial is left behind on failure.
    """
    import torch

    from ..predict import Predictor
    from ..config import TileConfig

    out = Path(out)
    as_zip = out.suffix.lower() == ".zip"
    check_writable(out, kind="file" if as_zip else "folder")
    if not as_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{str(out)!r} already exists and is not an empty folder.",
                          "choose a new folder (or a .zip file name) for the package.")
    model = load_model(model)
    cfg = model.config
    norm_a, norm_b = model.normalizations(np.float32)
    pre, pre_note = _affine_pre(norm_a)
    post, post_note = _affine_post(norm_b)
    x = _test_image(model, test_image, norm_a)
    with torch.inference_mode(False):  # ComfyUI runs nodes under inference mode; tracing refuses it
        gen = copy.deepcopy(model.generator).cpu().eval()
    x_model = _apply_ops(x, pre)
    with torch.no_grad():
        y_model = gen(torch.from_numpy(x_model)).numpy()
    y = _apply_ops(y_model, post)
    # what translate gives for the same data (float32, untiled), to state the difference measured
    ours = Predictor.from_model(model, TileConfig(tile=0)).predict(
        np.moveaxis(x[0], 0, -1) if norm_a.channels > 1 else x[0, 0],
        channel_axis=-1 if norm_a.channels > 1 else None, output_dtype="float32")
    ours = ours[None, None] if ours.ndim == 2 else np.moveaxis(ours, -1, 0)[None]
    parity = {"pipeline vs translate (data units)": float(np.abs(ours - y).max())}

    use_onnx = onnx
    if use_onnx is None:
        try:
            import onnx as _onnx  # noqa: F401

            use_onnx = True
        except ImportError:
            use_onnx = False
    name = _safe_name(name or (Path(model.path).stem if model.path else "pix2pix model"))
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # as an ordinary new folder (mkdtemp makes it owner-only)
    except OSError as exc:
        raise write_failed(out, exc) from None
    try:
        side = x.shape[-1]
        example = torch.from_numpy(x_model)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                traced = torch.jit.trace(gen, example.clone(), check_trace=False)
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"the generator could not be traced to TorchScript: {exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0][:300] if str(exc) else ''}",
                                  "use a generator built by napari-pix2pix (unet_N, resnet_*blocks).") from None
            traced.save(str(work / "weights.pt"))
        # the traced module in memory (this project loads no TorchScript file: it is a pickle-based
        # format); bioimageio.core's model test reads the written file back
        with torch.no_grad():
            parity["torchscript vs torch (model space)"] = float(np.abs(traced(example).numpy() - y_model).max())
        weights = {"torchscript": {"source": "weights.pt", "sha256": _sha256(work / "weights.pt"),
                                   "pytorch_version": torch.__version__.split("+")[0]}}
        if use_onnx:
            from .onnx import DEFAULT_OPSET, export_onnx

            result = export_onnx(model, work / "weights.onnx", opset=opset or DEFAULT_OPSET)
            weights["onnx"] = {"source": "weights.onnx", "sha256": _sha256(work / "weights.onnx"),
                               "opset_version": int(result.opset), "parent": "torchscript"}
            try:
                import onnxruntime as ort

                sess = ort.InferenceSession(str(work / "weights.onnx"), providers=["CPUExecutionProvider"])
                got = sess.run(None, {sess.get_inputs()[0].name: x_model})[0]
                parity["onnx vs torch (model space)"] = float(np.abs(got - y_model).max())
            except ImportError:
                pass
        np.save(work / "test_input.npy", x.astype(np.float32))
        np.save(work / "test_output.npy", y.astype(np.float32))
        _cover(x, y, work / "cover.png")
        (work / "README.md").write_text(_readme(model, name, {"pre": pre_note, "post": post_note}, parity,
                                                list(weights)), encoding="utf-8")
        m = cfg.size_multiple
        size = {"min": m, "step": m}

        def axes(channels: int, input_side: bool) -> list:
            spatial = [{"type": "space", "id": a, "size": size if input_side
                        else {"tensor_id": "input", "axis_id": a}} for a in ("y", "x")]
            return ([{"type": "batch"},
                     {"type": "channel", "channel_names": [f"c{i}" for i in range(channels)]}] + spatial)

        rdf = {
            "format_version": SPEC_VERSION,
            "type": "model",
            "name": name,
            "description": (f"Pix2Pix image-to-image translation ({cfg.generator}, {cfg.in_channels} -> "
                            f"{cfg.out_channels} channels), exported by napari-pix2pix."),
            "authors": authors or [{"name": "napari-pix2pix user"}],
            "cite": [PIX2PIX_CITATION],
            "license": license,
            "tags": ["pix2pix", "image-to-image", "2d", "napari-pix2pix"],
            "documentation": {"source": "README.md", "sha256": _sha256(work / "README.md")},
            "covers": [{"source": "cover.png", "sha256": _sha256(work / "cover.png")}],
            "inputs": [{
                "id": "input",
                "description": "raw data values (float32); normalised by the preprocessing",
                "axes": axes(norm_a.channels if norm_a.is_labels else cfg.in_channels, True),
                "test_tensor": {"source": "test_input.npy", "sha256": _sha256(work / "test_input.npy")},
                "data": {"type": "float32"},
                "preprocessing": pre,
            }],
            "outputs": [{
                "id": "output",
                "description": "the translation in the target's data range (float32)",
                "axes": axes(cfg.out_channels if not norm_b.is_labels else 1, False),
                "test_tensor": {"source": "test_output.npy", "sha256": _sha256(work / "test_output.npy")},
                "data": {"type": "float32"},
                "postprocessing": post,
            }],
            "weights": weights,
            "config": {"napari_pix2pix": {"model": cfg.to_dict(), "norm_a": norm_a.to_dict(),
                                          "norm_b": norm_b.to_dict(), "step": int(model.step),
                                          "task": (model.checkpoint.data or {}).get("task", "translate"),
                                          "mode": "eval", "test_side": int(side), "parity": parity}},
        }
        import yaml

        (work / "rdf.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(rdf)), sort_keys=False),
                                       encoding="utf-8")
        _publish(work, out, as_zip)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise write_failed(out, exc) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BioimageioExport(path=out, weights=list(weights), parity=parity, rdf=rdf)


def _publish(work: Path, out: Path, as_zip: bool) -> None:
    """Move the finished package into place: a zip is written beside and renamed over ``out``;
    a folder is renamed to ``out`` (which is absent or empty)."""
    if as_zip:
        from ..paths import atomic_write

        def write(tmp):
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(work.iterdir()):
                    zf.write(f, f.name)

        atomic_write(out, write)
        shutil.rmtree(work, ignore_errors=True)
        return
    if out.is_dir():
        out.rmdir()  # empty (checked before): replaced by the finished package
    os.replace(work, out)
