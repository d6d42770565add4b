"""Lazy translation of dask arrays (napari's dask/zarr layers, images larger than memory).

:func:`translate_dask` maps the engine's :class:`~napari_pix2pix.predict.Predictor` over the
array with :func:`dask.array.map_overlap`: the Y/X chunks are the cores of the tiles
(``tile - 2 * overlap`` pixels), the halo (``depth``) is ``overlap`` pixels, so every block the
network sees is one ``tile`` x ``tile`` tile, exactly as the in-memory tiler cuts them; inside a
block the engine pads, tiles (when a block is larger than ``tile``) and blends with its ramp, and
the halo is then cut away. The result is lazy: compute it with the threaded scheduler, a
``dask.distributed`` cluster, or stream it to zarr with :func:`write_zarr`.

Layouts are the engine's: ``[..., Y, X]`` (one channel) or ``[..., Y, X, C]`` /
``channel_axis=k``; leading axes (Z, T) are stacks, one block per slice.

In ``eval`` mode the network is deterministic, so the only difference to the in-memory result is
the context a pixel near a block edge sees (``overlap`` pixels of real neighbours instead of the
neighbouring tile's blend); it shrinks as ``overlap`` grows. Normalisation is the model's fixed,
dataset-level mapping; a ``per_image`` percentile mapping would be computed per block (a warning
says so).
"""

from __future__ import annotations

import threading
import uuid
import warnings

import numpy as np

from .config import TileConfig
from .errors import ConfigError, InputError

BOUNDARY_CHOICES = ("reflect", "none")
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _model_lock(backend) -> threading.Lock:
    """One lock per backend object in this process: the torch backend switches the generator's
    mode in a context manager, so two threads must not run the same model at once (each torch
    call uses all intra-op threads anyway)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(backend), threading.Lock())


def _translate_block(block: np.ndarray, *, predictor, halo: int, edge: str,
                     output_dtype: str, block_info=None) -> np.ndarray:
    """Translate one block ``[..., y, x, C]`` (core + halo) and cut the halo away."""
    info = block_info[0]
    nchunks, where = info["num-chunks"], info["chunk-location"]
    ax_y, ax_x = block.ndim - 3, block.ndim - 2
    with _model_lock(predictor.backend):
        out = predictor.predict(block, channel_axis=-1, output_dtype=output_dtype)
    if out.ndim == block.ndim - 1:  # the engine drops a single output channel
        out = out[..., None]
    index = [slice(None)] * out.ndim
    for ax in (ax_y, ax_x):
        left = halo if (edge != "none" or where[ax] > 0) else 0
        right = halo if (edge != "none" or where[ax] < nchunks[ax] - 1) else 0
        index[ax] = slice(left, out.shape[ax] - right)
    return np.ascontiguousarray(out[tuple(index)])


def translate_dask(model, darr, config: TileConfig | None = None, channel_axis: int | None = None, *,
                   output_dtype: str = "input", boundary: str = "reflect"):
    """Lazy translation of ``darr`` (a dask array, or anything ``dask.array.asarray`` accepts:
    numpy, zarr) with ``model`` (:class:`~napari_pix2pix.model.Pix2PixModel`, or a
    :class:`~napari_pix2pix.predict.Predictor` of any backend, e.g. onnxruntime).

    ``config``: :class:`TileConfig` (``tile``: block size the network sees, ``overlap``: halo
    depth; ``tile=0`` means one block per slice). ``boundary``: ``reflect`` (the image edge is
    mirrored, as the in-memory tiler pads) or ``none`` (edge blocks get no halo outside the image).
    Returns a dask array in the input's layout with the model's output channels.
    """
    import dask.array as da

    from .predict import Predictor, clamp_tiling

    if isinstance(model, Predictor):
        config = config or model.config
        backend = model.backend
    else:
        config = config or TileConfig()
        from .backends.torch import TorchBackend

        backend = TorchBackend(model)
    if boundary not in BOUNDARY_CHOICES:
        raise InputError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARY_CHOICES)}.",
                         "use boundary='reflect' (default) or 'none'.")
    x = da.asarray(darr)
    if x.dtype == bool:
        x = x.astype(np.uint8)
    if x.dtype.kind not in "uif":
        raise InputError(f"the image has dtype {x.dtype}, which is not an image type.",
                         "convert it to an integer or float array.")
    task = getattr(backend, "task", "translate")
    if channel_axis is None and task == "colorize" and x.ndim >= 3 and x.shape[-1] in (3, 4) and x.shape[-2] > 4:
        channel_axis = -1  # RGB(A), by the rule the in-memory colorize path applies
    squeeze = channel_axis is None
    if squeeze:
        if backend.in_channels != 1:
            raise InputError(f"the model expects {backend.in_channels} channels but the image has no "
                             f"channel axis (shape {x.shape}).", "pass channel_axis=... for a multichannel image.")
        x = x[..., None]
    else:
        x = da.moveaxis(x, channel_axis, -1)
    if x.ndim < 3:
        raise InputError(f"the image must be at least 2-D, got shape {tuple(x.shape)}.", "pass a [Y, X] image.")
    h, w = x.shape[-3:-1]
    if config.samples > 1:
        raise ConfigError(f"samples={config.samples}: stochastic samples are not run block by block (each block "
                          "would draw its own dropout masks).",
                          "use samples 1 with dask, or translate the image in memory for uncertainty maps.")
    norm_a = backend.normalizations(x.dtype)[0]
    if task == "translate" and norm_a.mode == "percentile" and norm_a.per_image:
        warnings.warn("the model normalises each image by its own percentiles; with dask every block "
                      "is normalised by its own, which can show at block edges.", stacklevel=2)
    if task == "colorize" and x.dtype.kind == "f":
        warnings.warn("a colorize model reads a float image as 0..1, or as 0..255 when its maximum is above 1; "
                      "with dask each block decides by its own maximum.", stacklevel=2)

    tile, overlap = clamp_tiling(config.tile, config.overlap)
    tile = tile or max(h, w)
    core = max(tile - 2 * overlap, 1)
    depth = overlap
    # the boundary halo may not exceed the smallest chunk: small images get one block per axis
    chunks = tuple([1] * (x.ndim - 3) + [min(core, h), min(core, w), x.shape[-1]])
    x = x.rechunk(chunks)
    if depth and (x.chunks[-3][-1] < depth or x.chunks[-2][-1] < depth):
        x = x.rechunk({x.ndim - 3: _balanced(h, core, depth), x.ndim - 2: _balanced(w, core, depth)})
    depth = min(depth, min(x.chunks[-3]), min(x.chunks[-2]))
    block_config = config.replace(tile=tile if config.tile else 0, overlap=overlap)
    predictor = Predictor(backend, block_config)
    out_c = predictor.output_channels(x.dtype)  # by the task: colorize gives RGB
    out_chunks = x.chunks[:-1] + ((out_c,),)
    dtype = predictor.output_dtype(output_dtype, x.dtype)
    axes_depth = {x.ndim - 3: depth, x.ndim - 2: depth}
    y = da.map_overlap(
        _translate_block, x, depth=axes_depth, boundary="reflect" if boundary == "reflect" else "none",
        trim=False, dtype=dtype, chunks=out_chunks, meta=np.empty((0,) * x.ndim, dtype),
        name=f"pix2pix-translate-{uuid.uuid4().hex[:12]}",
        predictor=predictor, halo=depth, edge=boundary, output_dtype=output_dtype)
    if squeeze and out_c == 1:
        return y[..., 0]
    if not squeeze:
        y = da.moveaxis(y, -1, channel_axis)
    return y


def _balanced(length: int, core: int, depth: int) -> tuple[int, ...]:
    """Chunks of about ``core`` pixels along an axis whose last one is at least ``depth``."""
    n = max(1, -(-length // core))
    while n > 1 and length // n < depth:
        n -= 1
    base, extra = divmod(length, n)
    return tuple(base + (i < extra) for i in range(n))


def write_zarr(darr, store, component: str | None = None, *, overwrite: bool = True, compute: bool = True):
    """Write a (lazy) dask array to a zarr store (path or store object), block by block, with
    whatever scheduler is active (threads by default, a ``dask.distributed`` client when one
    exists). Returns the zarr array (``compute=False``: a delayed write to compute later)."""
    import dask.array as da

    result = da.to_zarr(darr, store, component=component, overwrite=overwrite, compute=compute,
                        return_stored=False)
    if not compute:
        return result
    import zarr

    root = zarr.open(store, mode="r")
    return root[component] if component else root
