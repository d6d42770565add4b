"""Mapping one side (A or B) of the data to the model's [-1, 1] and back.

Arrays here are channel-first: one image ``[C, H, W]`` or a batch ``[N, C, H, W]``, in any
numeric dtype. :func:`fit_normalization` looks at the training data once and returns a
:class:`Normalization`; its ``forward`` gives float32 in (about) [-1, 1] with the model's
channel count, its ``inverse`` maps model output back to the data's range and dtype.
16-bit and float data are never reduced to 8 bits.

Modes (``NormConfig.mode``):

* ``percentile``: ``low``/``high`` are the data values at the configured percentiles (1 and
  99.8 by default), pooled over all images and channels of the dataset (``per_image=False``)
  or computed on each image itself (``per_image=True``). ``low`` maps to -1, ``high`` to +1.
* ``fixed``: ``low``/``high`` are given data values.
* ``none``: float data already in [0, 1] (mapped to [-1, 1]) or in [-1, 1] (kept); integer
  data uses its dtype's full range (uint8: 0..255).
* ``labels``: integer label images ``[1, H, W]``, encoded by ``label_encoding``:
  ``binary`` (foreground > 0 -> +1, background -> -1; 1 channel), ``onehot`` (``n_classes``
  channels, +1 for the pixel's class, -1 elsewhere; ids above ``n_classes - 1`` are clipped
  to the last class) or ``scaled`` (ids 0..max mapped linearly to [-1, 1]).

Intensity values beyond ``low``/``high`` are NOT clipped by ``forward`` (bright outliers map
above +1, the information is kept); ``inverse`` clips only to the dtype's range.
NaN or inf anywhere raises :class:`~napari_pix2pix.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import NormConfig
from ..errors import InputError

_MAX_SAMPLES = 2_000_000
_MAX_ONEHOT_CLASSES = 256


def check_finite(arr: np.ndarray, what: str = "the array") -> None:
    """Raise InputError if a float array holds NaN or inf values."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fc":
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int((~finite).sum()) - n_nan
    parts = ([f"{n_nan} NaN"] if n_nan else []) + ([f"{n_inf} infinite"] if n_inf else [])
    raise InputError(f"{what} contains {' and '.join(parts)} pixels.",
                     "replace them before training or translating (e.g. numpy.nan_to_num, "
                     "or crop them away).")


def _as_batch(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(arr)
    if arr.ndim == 3:
        return arr[None], True
    if arr.ndim == 4:
        return arr, False
    raise InputError(f"expected an image [C, H, W] or a batch [N, C, H, W], got shape {list(arr.shape)}.",
                     "pass channel-first arrays (move the channel axis first).")


def _sample_values(arrays: list[np.ndarray], max_samples: int = _MAX_SAMPLES) -> np.ndarray:
    """Pooled float64 values of ``arrays`` (a deterministic random subsample if huge)."""
    total = sum(int(a.size) for a in arrays)
    if total <= max_samples:
        return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])
    rng = np.random.default_rng(0)
    parts = []
    for a in arrays:
        k = max(1, int(round(max_samples * a.size / total)))
        flat = np.asarray(a).reshape(-1)
        parts.append(flat[rng.integers(0, flat.size, k)].astype(np.float64))
    return np.concatenate(parts)


def _percentile_range(arrays: list[np.ndarray], lo_pct: float, hi_pct: float) -> tuple[float, float]:
    values = _sample_values(arrays)
    low, high = np.percentile(values, [lo_pct, hi_pct])
    return _nondegenerate(float(low), float(high))


def _nondegenerate(low: float, high: float) -> tuple[float, float]:
    if not high > low:  # a constant image: any positive span; constant data maps to -1
        high = low + 1.0
    return low, high


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype == bool:
        return 0.0, 1.0
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return float(np.finfo(dtype).min), float(np.finfo(dtype).max)


@dataclass
class Normalization:
    """The fitted mapping of one side between data values and the model's [-1, 1].

    ``mode``: ``percentile`` | ``fixed`` | ``none`` | ``labels``. ``low``/``high``: data values
    mapped to -1/+1 (dataset level; for ``per_image`` they are the dataset's values, used by
    ``inverse`` when no per-image range is given). ``dtype``: numpy dtype name of the source
    data (``inverse`` casts back to it). ``channels``: channel count of the data ``[C, H, W]``.
    ``label_encoding`` / ``n_classes``: for labels (``n_classes`` = largest id + 1).
    ``percentiles``: the (low, high) percentiles used, for percentile mode.
    """

    mode: str = "percentile"
    per_image: bool = False
    low: float = 0.0
    high: float = 1.0
    dtype: str = "float32"
    channels: int = 1
    label_encoding: str = "binary"
    n_classes: int = 0
    percentiles: tuple[float, float] | None = None

    @property
    def is_labels(self) -> bool:
        return self.mode == "labels"

    @property
    def model_channels(self) -> int:
        """Channels the model sees for this side (onehot labels: ``n_classes``)."""
        if self.is_labels:
            return self.n_classes if self.label_encoding == "onehot" else 1
        return self.channels

    # -- forward -------------------------------------------------------------------------

    def image_range(self, array: np.ndarray) -> tuple[float, float]:
        """(low, high) data values used for ``array`` ``[C, H, W]``: its own percentiles when
        ``per_image``, the dataset's otherwise. Pass them to ``inverse`` to undo a per-image mapping."""
        if self.mode == "percentile" and self.per_image:
            lo_pct, hi_pct = self.percentiles or (1.0, 99.8)
            return _percentile_range([np.asarray(array)], lo_pct, hi_pct)
        return self.low, self.high

    def _check_channels(self, batch: np.ndarray) -> None:
        if batch.shape[1] != self.channels:
            raise InputError(f"the image has {batch.shape[1]} channels but this side was fitted on "
                             f"{self.channels}-channel data (shape {list(batch.shape)}).",
                             f"pass {self.channels}-channel images, channel axis first.")

    def forward(self, array: np.ndarray) -> np.ndarray:
        """Data ``[C, H, W]`` or ``[N, C, H, W]`` (any dtype) -> float32 ``[model_channels, H, W]``
        (or with the leading N). Intensities are not clipped; labels are exactly -1/+1 (or scaled)."""
        batch, single = _as_batch(array)
        check_finite(batch)
        self._check_channels(batch)
        if self.is_labels:
            out = self._labels_forward(batch)
        else:
            out = np.empty(batch.shape, np.float32)
            for i in range(batch.shape[0]):
                low, high = self.image_range(batch[i])
                scale = np.float32(2.0 / (high - low))
                np.multiply(batch[i].astype(np.float32) - np.float32(low), scale, out=out[i])
                out[i] -= np.float32(1.0)
        return out[0] if single else out

    def _labels_forward(self, batch: np.ndarray) -> np.ndarray:
        ids = batch[:, 0]
        if self.label_encoding == "binary":
            return np.where(ids > 0, np.float32(1), np.float32(-1))[:, None].astype(np.float32)
        if self.label_encoding == "onehot":
            n = self.n_classes
            clipped = np.clip(ids, 0, n - 1).astype(np.int64)
            out = np.full((batch.shape[0], n) + ids.shape[1:], -1.0, np.float32)
            for k in range(n):
                out[:, k][clipped == k] = 1.0
            return out
        top = max(self.high, 1.0)
        scaled = np.clip(ids.astype(np.float64), 0, top) / top * 2.0 - 1.0
        return scaled[:, None].astype(np.float32)

    # -- inverse -------------------------------------------------------------------------

    def inverse(self, y: np.ndarray, dtype=None, low: float | None = None, high: float | None = None) -> np.ndarray:
        """Model values ``[C, H, W]`` or ``[N, C, H, W]`` in [-1, 1] -> data values in ``dtype``
        (default: the source dtype). Integer dtypes are rounded and clipped to the dtype's
        range. Labels: binary thresholds at 0 (-> 0/1), onehot takes the argmax over channels,
        scaled rounds to the nearest id; the result has 1 channel. ``low``/``high`` override
        the fitted range (use :meth:`image_range` of the input for per-image normalisation)."""
        batch, single = _as_batch(y)
        dtype = np.dtype(dtype or self.dtype)
        if self.is_labels:
            if self.label_encoding == "binary":
                ids = (batch[:, :1] > 0).astype(np.int64)
            elif self.label_encoding == "onehot":
                ids = np.argmax(batch, axis=1)[:, None]
            else:
                top = max(self.high, 1.0)
                ids = np.rint((batch[:, :1].astype(np.float64) + 1.0) / 2.0 * top)
                ids = np.clip(ids, 0, top)
            out = cast_to(ids, dtype)
        else:
            lo = self.low if low is None else float(low)
            hi = self.high if high is None else float(high)
            x = (batch.astype(np.float64) + 1.0) * ((hi - lo) / 2.0) + lo
            out = cast_to(x, dtype)
        return out[0] if single else out

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["low"], d["high"] = float(self.low), float(self.high)
        d["percentiles"] = None if self.percentiles is None else [float(p) for p in self.percentiles]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in dict(data or {}).items() if k in names}
        if kwargs.get("percentiles") is not None:
            kwargs["percentiles"] = tuple(float(p) for p in kwargs["percentiles"])
        return cls(**kwargs)


def cast_to(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` in ``dtype``: rounded and clipped for integers, thresholded at 0.5 for bool."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return x > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def default_normalization(dtype, channels: int) -> Normalization:
    """The mapping to use when nothing was fitted (e.g. imported reference checkpoints): the
    reference Pix2Pix convention, mode ``none``: integer data over its dtype's full range
    (uint8 0..255 -> -1..1), float data from [0, 1]."""
    dtype = np.dtype(dtype)
    low, high = _dtype_range(dtype) if dtype.kind in "biu" else (0.0, 1.0)
    return Normalization(mode="none", per_image=False, low=low, high=high, dtype=dtype.name, channels=int(channels))


def fit_normalization(arrays: list[np.ndarray], config: NormConfig | None = None,
                      is_labels: bool = False) -> Normalization:
    """Fit the mapping of one side from its training images ``[C, H, W]`` (all with the same C).

    Dataset percentiles are pooled over all images and channels (a fixed random subsample of
    2 million values when larger). ``is_labels`` (or ``config.mode == 'labels'``) fits a label
    encoding; label images must be integer (or bool) with one channel.
    """
    config = config or NormConfig()
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise InputError("no images to fit the normalisation on.", "pass at least one image.")
    for a in arrays:
        if a.ndim != 3:
            raise InputError(f"expected images [C, H, W], got shape {list(a.shape)}.",
                             "pass channel-first single images.")
        check_finite(a)
    channels = {a.shape[0] for a in arrays}
    if len(channels) > 1:
        raise InputError(f"the images have different channel counts {sorted(channels)}.",
                         "make every image of one side gray, or every image RGB.")
    (c,) = channels
    dtype = np.result_type(*[a.dtype for a in arrays])
    if is_labels or config.mode == "labels":
        if dtype.kind not in "biu":
            raise InputError(f"label images must be integer, got {dtype}.",
                             "pass integer label images, or turn label handling off for this side.")
        if c != 1:
            raise InputError(f"label images must have one channel, got {c}.",
                             "pass single-channel label images, or turn label handling off for this side.")
        top = max(int(np.max(a)) for a in arrays)
        top = max(top, 1)
        n_classes = top + 1
        if config.label_encoding == "onehot" and n_classes > _MAX_ONEHOT_CLASSES:
            raise InputError(f"onehot encoding would need {n_classes} channels (largest label id {top}); "
                             "these look like instance labels.",
                             "use label_encoding 'binary' (foreground/background) or 'scaled'.")
        return Normalization(mode="labels", per_image=False, low=0.0, high=float(top), dtype=dtype.name,
                             channels=1, label_encoding=config.label_encoding, n_classes=n_classes)
    if config.mode == "percentile":
        low, high = _percentile_range(arrays, config.low, config.high)
        return Normalization(mode="percentile", per_image=bool(config.per_image), low=low, high=high,
                             dtype=dtype.name, channels=c, label_encoding=config.label_encoding,
                             percentiles=(float(config.low), float(config.high)))
    if config.mode == "fixed":
        low, high = float(config.low), float(config.high)
    elif dtype.kind in "biu":
        low, high = _dtype_range(dtype)
    else:
        low = -1.0 if min(float(np.min(a)) for a in arrays) < 0 else 0.0
        high = 1.0
    return Normalization(mode=config.mode, per_image=False, low=low, high=high, dtype=dtype.name,
                         channels=c, label_encoding=config.label_encoding)
