"""Evaluate a trained model on paired data: a metrics table, SSIM and error maps, a contact sheet.

A model and a paired source (files, folders, or arrays) give, per image (per slice for stacks):

* ``L1`` (model units, range 2), ``PSNR`` (dB, peak 1 on the [0, 1] scale, capped at
  :data:`~napari_pix2pix.metrics.PSNR_CAP`), ``SSIM`` (kornia, Gaussian window 11) and
  ``Sharpness`` (Laplacian energy of the output / of the target: 1 = as sharp, < 1 = blurrier);
  when the model's B side is a label image also ``Dice`` and ``IoU`` of the foreground;
* optionally the per-pixel SSIM map and absolute-error map as float32 tif files
  (``<name>_ssim.tif``, ``<name>_error.tif``; ``[H, W]``, averaged over channels);
* optionally a contact sheet PNG (uint8 RGB): one row per image, panels
  input | output | target | error, each rescaled for display.

Everything is compared in the model's space: A is normalised with the model's stored
normalisation of A, B with its normalisation of B (the mapping fitted on the training data),
exactly as the training validation does. No Qt, napari or magicgui here: the CLI's
``evaluate`` command (built from the schema in :mod:`napari_pix2pix.cli`) and the napari
"Quality" view call :func:`evaluate` and :func:`quality_maps`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .config import DataConfig, TileConfig
from .errors import InputError
from .render import grid, to_uint8

SHEET_PANEL_MAX = 512  # contact-sheet panels larger than this are shown subsampled
SHEET_GAP = 4
METRIC_ORDER = ("L1", "PSNR", "SSIM", "Sharpness", "Dice", "IoU")


# ------------------------------------------------------------------------------- results
@dataclass
class Evaluation:
    """What :func:`evaluate` found. ``images``: one dict per image (``name`` plus metrics);
    ``mean``: the metrics averaged over images (NaN entries ignored); ``maps``/``sheet``:
    files written."""

    model: str | None
    images: list[dict] = field(default_factory=list)
    mean: dict = field(default_factory=dict)
    maps: list[str] = field(default_factory=list)
    sheet: str | None = None

    @property
    def metric_names(self) -> list[str]:
        names = {k for row in self.images for k in row if k not in ("name", "shape")}
        return [m for m in METRIC_ORDER if m in names] + sorted(names - set(METRIC_ORDER))

    def to_dict(self) -> dict:
        """JSON-safe (non-finite numbers become None)."""
        def clean(d):
            return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

        return {"model": self.model, "images": [clean(r) for r in self.images], "mean": clean(self.mean),
                "maps": list(self.maps), "sheet": self.sheet}

    def format_table(self) -> str:
        """A plain-text table: one row per image, then the mean."""
        names = self.metric_names
        rows = [[r["name"]] + [_fmt(r.get(m)) for m in names] for r in self.images]
        if len(self.images) > 1:
            rows.append(["mean"] + [_fmt(self.mean.get(m)) for m in names])
        header = ["image"] + names
        widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
        line = lambda row: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                     for i, (c, w) in enumerate(zip(row, widths)))
        out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
        return "\n".join(out)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


# ------------------------------------------------------------------------------- helpers
def _as_model(model, device="cpu"):
    from .model import Pix2PixModel

    if isinstance(model, (str, os.PathLike)):
        return Pix2PixModel.load(model, device=device)
    return model


def _norms(model, dtype_a, dtype_b):
    """The model's normalisations of A and B (dtype-range mapping when the file has none)."""
    return model.normalizations(dtype_a, dtype_b)


def model_space(model, raw_a: np.ndarray, raw_b: np.ndarray):
    """``(a, b, norm_b)``: data arrays ``[N, C, H, W]`` (or ``[C, H, W]``) -> float32 tensors
    ``[N, C, H, W]`` in the model's [-1, 1], with the model's normalisations."""
    import torch

    raw_a, raw_b = np.asarray(raw_a), np.asarray(raw_b)
    if raw_a.ndim == 3:
        raw_a, raw_b = raw_a[None], raw_b[None]
    if raw_a.shape[0] != raw_b.shape[0] or raw_a.shape[-2:] != raw_b.shape[-2:]:
        raise InputError(f"source {list(raw_a.shape)} and target {list(raw_b.shape)} do not match in size.",
                         "pass a target of the same size (and slice count) as the source.")
    norm_a, norm_b = _norms(model, raw_a.dtype, raw_b.dtype)
    a = norm_a.forward(raw_a)
    b = norm_b.forward(raw_b)
    cfg = model.config
    if a.shape[1] != cfg.in_channels:
        raise InputError(f"the source has {a.shape[1]} channel(s) after normalisation but the model expects "
                         f"{cfg.in_channels}.", "choose a matching model or source image.")
    if b.shape[1] != cfg.out_channels:
        raise InputError(f"the target has {b.shape[1]} channel(s) after normalisation but the model produces "
                         f"{cfg.out_channels}.", "choose a matching target image (is it the B side?).")
    return (torch.from_numpy(np.ascontiguousarray(a, np.float32)),
            torch.from_numpy(np.ascontiguousarray(b, np.float32)), norm_b)


def predict(model, a, config: TileConfig | None = None, progress=None, cancel=None):
    """Generator output ``[N, C_out, H, W]`` (CPU float32, model space) for ``a`` ``[N, C_in, H, W]``
    in model space, with the tiling and test-time mode of ``config``."""
    import torch

    from .predict import Predictor

    x = a.detach().cpu().float().numpy() if torch.is_tensor(a) else np.asarray(a, np.float32)
    y = Predictor.from_model(model, config or TileConfig()).predict_model_space(x, progress=progress, cancel=cancel)
    return torch.from_numpy(np.ascontiguousarray(y))


def pair_metrics(fake, target, norm_b=None) -> dict:
    """All evaluation metrics of ``fake`` against ``target`` (``[N, C, H, W]`` model space):
    L1, PSNR, SSIM, Sharpness, and Dice/IoU when ``norm_b`` is a label normalisation."""
    from .metrics import image_metrics, sharpness

    labels = bool(norm_b is not None and norm_b.is_labels)
    out = image_metrics(fake, target, labels=labels,
                        encoding=norm_b.label_encoding if labels else "binary",
                        top=norm_b.high if labels else 1.0)
    out["Sharpness"] = sharpness(fake, target)
    return {k: out[k] for k in [m for m in METRIC_ORDER if m in out]}


def _maps(fake, target) -> tuple[np.ndarray, np.ndarray]:
    """SSIM map and absolute-error map ``[N, H, W]`` float32, averaged over channels."""
    from .metrics import error_map, ssim_map

    if min(fake.shape[-2:]) >= 11:
        s = ssim_map(fake, target).mean(1).numpy().astype(np.float32)
    else:
        s = np.full((fake.shape[0],) + tuple(fake.shape[-2:]), np.nan, np.float32)
    e = error_map(fake, target).mean(1).numpy().astype(np.float32)
    return s, e


def _colorize_rgb(l_norm, ab_norm):
    """Colorize models: model-space L ``[N, 1, H, W]`` and ab ``[N, 2, H, W]`` -> RGB ``[N, 3, H, W]``
    in [-1, 1] (the range every metric here takes)."""
    from .tasks import model_to_rgb

    return model_to_rgb(l_norm, ab_norm) * 2.0 - 1.0


def _colorize_maps(model, source, target, config, channel_axis) -> dict:
    """:func:`quality_maps` of a colorize model: its RGB output against the target's colours."""
    import torch

    from .predict import Predictor
    from .tasks import from_unit_rgb, to_rgb_layout

    truth, stack, colour = to_rgb_layout(target, channel_axis)
    if not colour:
        raise InputError("a colorize model is judged against colours, but the target image is gray.",
                         "choose an RGB target layer (the colour original of the source).")
    out = Predictor.from_model(model, config or TileConfig()).predict(source, channel_axis=channel_axis,
                                                                      output_dtype="float32")
    fake, _, _ = to_rgb_layout(out)
    if fake.shape != truth.shape:
        raise InputError(f"source {list(np.shape(source))} and target {list(np.shape(target))} do not match in size.",
                         "choose a target layer of the same size as the source.")
    s, e = _maps(torch.from_numpy(fake * 2 - 1), torch.from_numpy(truth * 2 - 1))
    dtype = np.asarray(target).dtype
    return {"ssim_map": s.reshape(stack + s.shape[1:]), "abs_error": e.reshape(stack + e.shape[1:]),
            "output": from_unit_rgb(np.asarray(out), dtype)}


# ----------------------------------------------------------------------- quality maps (napari)
def quality_maps(model, source, target, *, config: TileConfig | None = None,
                 channel_axis: int | None = None) -> dict:
    """Per-pixel quality of ``model`` on one paired image, for viewers.

    ``source``/``target``: napari-layout arrays (``[..., Y, X]`` or ``[..., Y, X, C]``, stacks
    slice by slice) of A and B. Returns ``{'ssim_map', 'abs_error', 'output'}``: SSIM (1 =
    identical structure) and absolute error (|output - target| on the [0, 1] scale of the
    normalised data: 0 = equal, 1 = opposite ends of the range), both float32 ``[..., Y, X]``
    averaged over channels; ``output``: the translated image in the target's data units and
    dtype, in the source's layout. For a colorize model the output is RGB (``[..., Y, X, 3]``)
    and both maps compare it with the target's colours (RGB on the [0, 1] scale).
    """
    from .inference import check_array, from_model_layout, to_model_layout
    from .tasks import task_of

    model = _as_model(model)
    if task_of(model) == "colorize":
        return _colorize_maps(model, source, target, config, channel_axis)
    src = check_array(source, "source")
    tgt = check_array(target, "target")
    norm_a, norm_b = _norms(model, src.dtype, tgt.dtype)
    xa, stack = to_model_layout(src, norm_a.channels, channel_axis)
    xb, stack_b = to_model_layout(tgt, norm_b.channels, channel_axis)
    if xa.shape[0] != xb.shape[0] or xa.shape[-2:] != xb.shape[-2:]:
        raise InputError(f"source {list(src.shape)} and target {list(tgt.shape)} do not match in size.",
                         "choose a target layer of the same size as the source.")
    a, b, norm_b = model_space(model, xa, xb)
    fake = predict(model, a, config)
    s, e = _maps(fake, b)
    output = norm_b.inverse(fake.numpy())
    return {"ssim_map": s.reshape(stack + s.shape[1:]), "abs_error": e.reshape(stack + e.shape[1:]),
            "output": from_model_layout(output, stack)}


# --------------------------------------------------------------------------- contact sheet
def _display(x: np.ndarray, lo: float | None = None, hi: float | None = None, onehot: bool = False) -> np.ndarray:
    """One model-layout panel ``[C, H, W]`` -> uint8 RGB ``[H, W, 3]`` through
    :func:`~napari_pix2pix.render.to_uint8`: three channels as RGB, onehot labels as their class
    index, anything else as its first channel in gray; ``lo``..``hi`` or the 0.5..99.5 percentiles."""
    x = np.asarray(x, np.float32)
    if onehot and x.shape[0] > 1:
        img = np.argmax(x, axis=0).astype(np.float32)
    elif x.shape[0] == 3:
        img = np.moveaxis(x, 0, -1)
    else:
        img = x[0]
    return to_uint8(img, limits=None if lo is None or hi is None else (lo, hi))


def contact_sheet(rows, onehot_b: bool = False) -> np.ndarray:
    """uint8 RGB image with one row per ``(a, fake, b)`` (model space ``[C, H, W]`` each):
    input | output | target | |output - target|, separated by gray gaps. Output and target are
    rescaled to the target's display range (so that their brightness compares); input and
    error each to their own (error from 0 to its 99.5th percentile). Large images are subsampled
    to at most :data:`SHEET_PANEL_MAX` pixels a side."""
    panels_rows = []
    for a, fake, b in rows:
        a, fake, b = (np.asarray(v, np.float32) for v in (a, fake, b))
        step = max(1, math.ceil(max(a.shape[-2:]) / SHEET_PANEL_MAX))
        a, fake, b = a[:, ::step, ::step], fake[:, ::step, ::step], b[:, ::step, ::step]
        err = np.abs(fake - b).mean(0, keepdims=True) / 2
        if onehot_b:
            lo, hi = 0.0, float(max(b.shape[0] - 1, 1))
        else:
            disp = b[0] if b.shape[0] != 3 else b
            lo, hi = np.percentile(disp, [0.5, 99.5])
            if not hi > lo:
                lo, hi = -1.0, 1.0
        ehi = float(np.percentile(err, 99.5)) or 1.0
        panels_rows.append([_display(a), _display(fake, lo, hi, onehot_b), _display(b, lo, hi, onehot_b),
                            _display(err, 0.0, ehi)])
    if not panels_rows:
        raise InputError("no images to put on the contact sheet.", "evaluate at least one pair.")
    return grid(panels_rows, gap=SHEET_GAP, fill=128)


# ------------------------------------------------------------------------------ evaluate
def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", str(name)).strip("._") or "image"


def load_pairs(model, source, target=None, data_config: DataConfig | None = None):
    """The paired dataset to evaluate: ``source``/``target`` paths (as the CLI's
    ``--source``/``--target``: files, folders, or an AB file/folder with no target) or arrays.
    Label handling follows the model (its B side is labels iff it was trained on labels)."""
    from .data import sources

    config = data_config or DataConfig(a_is_labels=model.is_labels("a"), b_is_labels=model.is_labels("b"))
    if isinstance(source, (str, os.PathLike)):
        return sources.from_paths(source, target, config)
    if target is None:
        raise InputError("evaluating arrays needs both a source and a target.", "pass the target array too.")
    return sources.from_arrays(source, target, config)


def _colorize_pairs(source, data_config):
    """Colorize evaluation pairs from colour images (paths or arrays): L in, ab as the truth."""
    from .tasks import colorize_dataset, colorize_from_paths

    if isinstance(source, (str, os.PathLike)):
        return colorize_from_paths(source, data_config)
    return colorize_dataset(source, data_config)


def evaluate(model, source, target=None, *, config: TileConfig | None = None,
             data_config: DataConfig | None = None, maps_dir: str | os.PathLike | None = None,
             sheet: str | os.PathLike | None = None, sheet_rows: int = 8,
             progress: Callable[[int, int], None] | None = None,
             cancel: Callable[[], bool] | None = None) -> Evaluation:
    """Evaluate ``model`` (a :class:`~napari_pix2pix.model.Pix2PixModel` or a file) on the pairs
    of ``source``/``target`` (see :func:`load_pairs`), or on a ready
    :class:`~napari_pix2pix.data.PairedDataset` passed as ``source``.

    ``maps_dir``: write ``<name>_ssim.tif`` and ``<name>_error.tif`` (float32 ``[H, W]``) per
    image there, and the contact sheet as ``contact_sheet.png`` unless ``sheet`` names another
    path. ``sheet``: write the contact sheet (first ``sheet_rows`` images) to this PNG.
    ``progress(done, total)`` is called after each image; ``cancel()`` stops between images.

    A colorize model is judged in RGB on colour images: ``target`` if given, else ``source``
    itself; the network sees their lightness, and the metrics compare its colours with theirs.
    """
    import torch

    from .data.sources import PairedDataset
    from .errors import Cancelled
    from .io import write_image
    from .tasks import task_of

    config = config or TileConfig()
    model = _as_model(model, config.device)
    colorize = task_of(model) == "colorize"
    if isinstance(source, PairedDataset):
        dataset = source
    elif colorize:  # the colours are the truth; the input is their lightness
        dataset = _colorize_pairs(source if target is None else target, data_config)
    else:
        dataset = load_pairs(model, source, target, data_config)
    result = Evaluation(model=getattr(model, "path", None))
    maps_dir = Path(maps_dir) if maps_dir is not None else None
    if sheet is None and maps_dir is not None:
        sheet = maps_dir / "contact_sheet.png"
    sheet_data, used = [], set()
    total = len(dataset.pairs)
    for i, pair in enumerate(dataset.pairs):
        if cancel is not None and cancel():
            raise Cancelled("evaluation was cancelled.", "run it again when needed.")
        if pair.raw_a is None or pair.raw_b is None:
            raise InputError(f"pair {pair.name} keeps no raw data to evaluate.",
                             "build the dataset with the from_* constructors.")
        if colorize:  # judged in RGB: the input's lightness with the predicted and the true colours
            a, ab = (torch.from_numpy(np.ascontiguousarray(x[None], np.float32)) for x in (pair.a, pair.b))
            fake, b, norm_b = _colorize_rgb(a, predict(model, a, config)), _colorize_rgb(a, ab), None
        else:
            a, b, norm_b = model_space(model, pair.raw_a, pair.raw_b)
            fake = predict(model, a, config)
        row = {"name": pair.name, **pair_metrics(fake, b, norm_b)}
        result.images.append(row)
        if maps_dir is not None:
            s, e = _maps(fake, b)
            stem = _safe_name(pair.name)
            while stem in used:
                stem += "_"
            used.add(stem)
            for suffix, arr in (("ssim", s[0]), ("error", e[0])):
                result.maps.append(str(write_image(maps_dir / f"{stem}_{suffix}.tif", arr)))
        if sheet is not None and len(sheet_data) < sheet_rows:
            sheet_data.append((a[0].numpy(), fake[0].numpy(), b[0].numpy()))
        if progress is not None:
            progress(i + 1, total)
    for m in result.metric_names:
        vals = [r[m] for r in result.images if m in r and r[m] == r[m]]
        result.mean[m] = float(np.mean(vals)) if vals else float("nan")
    if sheet is not None:
        onehot = bool(norm_b is not None and model.is_labels("b") and norm_b.label_encoding == "onehot")
        result.sheet = str(write_image(sheet, contact_sheet(sheet_data, onehot_b=onehot)))
    return result
