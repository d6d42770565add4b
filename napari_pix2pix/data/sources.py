"""Paired datasets (A -> B) from arrays, folders, side-by-side AB images or channels.

Every constructor validates first (see :mod:`.validate`) and raises
:class:`~napari_pix2pix.errors.DatasetError` with the full report when anything is wrong;
an empty source is an error, never an empty dataset.

Layouts (napari): ``[Y, X]`` is one gray pair; ``[Y, X, C]`` with C = 3 or 4 is one colour
pair (auto rule: 3+ dimensions, a last axis of 3 or 4 entries and an X axis of more than 4; override with
``rgb_a``/``rgb_b``); ``[Z, Y, X]``, ``[T, Z, Y, X]`` (and ``[..., Y, X, C]`` for colour)
are stacks giving one pair per 2-D slice, named ``<name>_z000``, ``<name>_z001``, ...
Inside a dataset each side of a pair is channel-first ``[C, H, W]``: ``Pair.a``/``Pair.b``
are float32 normalised to [-1, 1] (see :mod:`.normalize`), ``Pair.raw_a``/``Pair.raw_b``
the original data in its original dtype.

Label detection (``DataConfig.a_is_labels``/``b_is_labels`` = None): a side is labels when
all its images are single-channel, integer or bool, non-negative, and either bool, or at
most 2 distinct values, or piecewise constant: of horizontally adjacent pixel pairs whose
left pixel is non-zero, at least 80 % are equal (60 % when a folder/file/name contains
label, mask, seg, annot, instance or gt). Intensity images (also uint16 with few distinct
values) have much lower values (about 0.01-0.3 for microscopy and photos), label images
above 0.9. ``norm.mode == 'labels'`` forces labels. Labels are encoded per
``NormConfig.label_encoding``; any resizing of labels must be nearest-neighbour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import DataConfig, NormConfig
from ..errors import DatasetError, InputError
from .normalize import Normalization, fit_normalization
from .validate import RawPair, scan_ab_files, scan_ab_folder, scan_arrays, scan_folders, to_slices

_LABEL_HINT = re.compile(r"label|mask|seg|annot|instance|(^|[^a-z])gt([^a-z]|$)", re.IGNORECASE)


@dataclass
class Pair:
    """One training pair. ``a``: float32 ``[Ca, H, W]`` normalised (model channels),
    ``b``: float32 ``[Cb, H, W]``; ``raw_a``/``raw_b``: the data ``[C, H, W]`` as read, in its
    original dtype (None when not kept); ``name``: file stem or given name (+ slice suffix)."""

    a: np.ndarray
    b: np.ndarray
    name: str
    raw_a: np.ndarray | None = None
    raw_b: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.a.shape[-2:])


@dataclass
class PairedDataset:
    """Normalised training pairs plus the fitted mappings of both sides.

    ``source``: JSON-safe description (``kind``: arrays | folders | ab | ab_file | files |
    channels, paths, names, shapes, dtypes); ``from_spec(dataset.source)`` rebuilds file-based
    sets. ``foreground_bias``: copied from ``DataConfig`` for the patch sampler.
    """

    pairs: list
    norm_a: Normalization
    norm_b: Normalization
    a_is_labels: bool = False
    b_is_labels: bool = False
    source: dict = field(default_factory=dict)
    foreground_bias: float = 0.0

    @property
    def in_channels(self) -> int:
        """Channels of A as the model sees them."""
        return self.norm_a.model_channels

    @property
    def out_channels(self) -> int:
        """Channels of B as the model sees them (onehot labels: number of classes)."""
        return self.norm_b.model_channels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Pair:
        return self.pairs[i]

    def __iter__(self):
        return iter(self.pairs)

    def describe(self) -> dict:
        """JSON-safe summary: pair count, per-side shapes (H, W counts), dtype, channels,
        labels flag and normalisation, plus the source description."""
        def side(which: str) -> dict:
            norm = getattr(self, f"norm_{which}")
            shapes: dict[str, int] = {}
            for p in self.pairs:
                key = "x".join(map(str, getattr(p, which).shape))
                shapes[key] = shapes.get(key, 0) + 1
            return {"shapes": shapes, "dtype": norm.dtype, "channels": norm.channels,
                    "model_channels": norm.model_channels,
                    "is_labels": bool(getattr(self, f"{which}_is_labels")), "normalization": norm.to_dict()}

        return {"pairs": len(self.pairs), "pixels": int(sum(p.shape[0] * p.shape[1] for p in self.pairs)),
                "in_channels": self.in_channels, "out_channels": self.out_channels,
                "a": side("a"), "b": side("b"), "source": dict(self.source)}

    def split(self, fraction: float, seed: int = 0) -> tuple["PairedDataset", "PairedDataset | None"]:
        """Hold out a validation part: ``round(fraction * len)`` pairs chosen with ``seed``; when
        that is below one pair (e.g. a single image), the bottom ``round(fraction * H)`` rows
        of every pair (at least 1) form the validation set and the training pairs keep only the
        rows above them, so the two never overlap. ``fraction == 0`` -> ``(self, None)``."""
        if not 0 <= fraction < 1:
            raise InputError(f"validation fraction {fraction} is outside [0, 1).", "pass e.g. 0.1, or 0 for none.")
        if fraction == 0:
            return self, None
        n = len(self.pairs)
        k = min(int(round(fraction * n)), n - 1)
        if k >= 1:
            perm = np.random.default_rng(seed).permutation(n)
            val_idx = set(int(i) for i in perm[:k])
            train = [p for i, p in enumerate(self.pairs) if i not in val_idx]
            val = [p for i, p in enumerate(self.pairs) if i in val_idx]
            info = {"mode": "pairs", "fraction": fraction, "seed": seed,
                    "validation": [p.name for p in val]}
        else:
            train, val = [], []
            for p in self.pairs:
                h = p.shape[0]
                hv = max(1, int(round(fraction * h)))
                if h - hv < 1:
                    raise DatasetError(f"{p.name} is only {h} rows high; it cannot be split into training "
                                       "and validation rows.", "use a smaller validation fraction or more images.")
                cut = h - hv
                train.append(_rows(p, 0, cut))
                val.append(_rows(p, cut, h))
            info = {"mode": "rows", "fraction": fraction, "rows": "bottom"}
        src_t = dict(self.source, split=dict(info, part="train"))
        src_v = dict(self.source, split=dict(info, part="validation"))
        return (replace(self, pairs=train, source=src_t), replace(self, pairs=val, source=src_v))


def _rows(p: Pair, start: int, stop: int) -> Pair:
    cut = (lambda x: None if x is None else x[:, start:stop])
    return Pair(a=p.a[:, start:stop], b=p.b[:, start:stop], name=p.name,
                raw_a=cut(p.raw_a), raw_b=cut(p.raw_b))


# -- label detection -------------------------------------------------------------------------

def _sample_slices(slices: np.ndarray, max_slices: int = 8) -> np.ndarray:
    if slices.shape[0] <= max_slices:
        return slices
    idx = np.linspace(0, slices.shape[0] - 1, max_slices).round().astype(int)
    return slices[idx]


def looks_like_labels(slices: list[np.ndarray], hints=()) -> bool:
    """The label rule of the module docstring, on channel-first slices ``[S, C, H, W]``."""
    if not slices:
        return False
    if any(s.shape[1] != 1 or s.dtype.kind not in "biu" for s in slices):
        return False
    if all(s.dtype == bool for s in slices):
        return True
    sample = [_sample_slices(s) for s in slices]
    if min(int(s.min()) for s in sample) < 0:
        return False
    values = np.unique(np.concatenate([np.unique(s) for s in sample]))
    if values.size <= 2:
        return True
    hinted = any(_LABEL_HINT.search(str(h)) for h in hints if h)
    threshold = 0.6 if hinted else 0.8
    equal = total = 0
    for s in sample:
        left, right = s[..., :-1], s[..., 1:]
        fg = left != 0
        equal += int(np.count_nonzero((left == right) & fg))
        total += int(np.count_nonzero(fg))
    return total > 0 and equal / total >= threshold


def _side_is_labels(explicit: bool | None, norm: NormConfig, slices: list[np.ndarray], hints, side: str) -> bool:
    if norm.mode == "labels":
        if explicit is False:
            raise InputError(f"side {side}: normalization mode 'labels' but {side.lower()}_is_labels=False.",
                             f"set {side.lower()}_is_labels to True (or None), or choose another normalization mode.")
        return True
    if explicit is not None:
        return bool(explicit)
    return looks_like_labels(slices, hints)


# -- building --------------------------------------------------------------------------------

def _slice_names(name: str, n: int) -> list[str]:
    if n == 1:
        return [name]
    width = max(3, len(str(n - 1)))
    return [f"{name}_z{i:0{width}d}" for i in range(n)]


def _build(raw: list[RawPair], config: DataConfig, source: dict, hints_a=(), hints_b=()) -> PairedDataset:
    sa = [to_slices(p.a, p.rgb_a) for p in raw]
    sb = [to_slices(p.b, p.rgb_b) for p in raw]
    hints_a = list(hints_a) + [p.name for p in raw] + [p.files.get("a", "") for p in raw]
    hints_b = list(hints_b) + [p.name for p in raw] + [p.files.get("b", "") for p in raw]
    a_lab = _side_is_labels(config.a_is_labels, config.norm_a, sa, hints_a, "A")
    b_lab = _side_is_labels(config.b_is_labels, config.norm_b, sb, hints_b, "B")
    flat_a = [s[i] for s in sa for i in range(s.shape[0])]
    flat_b = [s[i] for s in sb for i in range(s.shape[0])]
    try:
        norm_a = fit_normalization(flat_a, config.norm_a, is_labels=a_lab)
        norm_b = fit_normalization(flat_b, config.norm_b, is_labels=b_lab)
    except InputError as exc:
        raise DatasetError(f"{source.get('kind', 'data')} source: {exc.problem}", exc.fix) from exc
    pairs = []
    for p, xa, xb in zip(raw, sa, sb):
        ya, yb = norm_a.forward(xa), norm_b.forward(xb)
        for i, name in enumerate(_slice_names(p.name, xa.shape[0])):
            pairs.append(Pair(a=ya[i], b=yb[i], name=name, raw_a=xa[i], raw_b=xb[i]))
    source = dict(source)
    source.setdefault("items", [{"name": p.name, "shape_a": list(p.a.shape), "shape_b": list(p.b.shape),
                                 "dtype_a": p.a.dtype.name, "dtype_b": p.b.dtype.name} for p in raw])
    return PairedDataset(pairs=pairs, norm_a=norm_a, norm_b=norm_b, a_is_labels=a_lab, b_is_labels=b_lab,
                         source=source, foreground_bias=float(config.foreground_bias))


def from_arrays(a, b, config: DataConfig | None = None, *, rgb_a: bool | None = None,
                rgb_b: bool | None = None, names=None) -> PairedDataset:
    """Pairs from napari-layout arrays (or equal-length lists of arrays): ``[Y, X]``,
    ``[Y, X, C]`` (rgb), ``[Z, Y, X]`` / ``[T, Z, Y, X]`` stacks (one pair per slice).
    ``names``: a base name or one per array (default ``pair``)."""
    config = config or DataConfig()
    report, raw = scan_arrays(a, b, rgb_a, rgb_b, names)
    report.raise_if_bad()
    return _build(raw, config, {"kind": "arrays"}, hints_a=[names] if isinstance(names, str) else [])


def from_folders(dir_a, dir_b, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from two folders matched by file stem (any mix of tif/png/jpg/npy; stacks give
    one pair per slice)."""
    config = config or DataConfig()
    report, raw = scan_folders(dir_a, dir_b)
    report.raise_if_bad()
    source = {"kind": "folders", "a": str(Path(dir_a)), "b": str(Path(dir_b)),
              "files": [{"a": p.files["a"], "b": p.files["b"]} for p in raw]}
    return _build(raw, config, source, hints_a=[Path(dir_a).name], hints_b=[Path(dir_b).name])


def from_ab_folder(folder, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from side-by-side images split at half width: A is the left half for
    ``config.direction == 'AtoB'``, the right half for ``'BtoA'``."""
    config = config or DataConfig()
    report, raw = scan_ab_folder(folder, config.direction)
    report.raise_if_bad()
    source = {"kind": "ab", "dir": str(Path(folder)), "direction": config.direction,
              "files": [p.files["ab"] for p in raw]}
    return _build(raw, config, source)


def from_channels(array, channels_a=None, channels_b=None, config: DataConfig | None = None,
                  channel_axis: int = -1, name: str = "image") -> PairedDataset:
    """A and B from channels of one multichannel image or stack: ``array`` has a channel
    axis (``channel_axis``, default last, e.g. ``[Y, X, C]`` or ``[Z, Y, X, C]``); A takes
    ``channels_a`` (default ``config.channels_a``), B ``channels_b``. One channel -> gray."""
    config = config or DataConfig()
    arr = np.asarray(array)
    ca = channels_a if channels_a is not None else config.channels_a
    cb = channels_b if channels_b is not None else config.channels_b
    if ca is None or cb is None:
        raise DatasetError("splitting one image into A and B needs the channels of each side.",
                           "pass channels_a and channels_b (e.g. (0,) and (1,)).")
    ca, cb = (int(c) for c in np.atleast_1d(ca)), (int(c) for c in np.atleast_1d(cb))
    ca, cb = list(ca), list(cb)
    if arr.ndim < 3:
        raise DatasetError(f"the image has shape {list(arr.shape)}: no channel axis to split.",
                           "pass a multichannel image [Y, X, C] (or name the channel axis).")
    arr = np.moveaxis(arr, channel_axis, -1)
    n = arr.shape[-1]
    bad = [c for c in ca + cb if not -n <= c < n]
    if bad:
        raise DatasetError(f"channel(s) {bad} do not exist; the image has {n} channels (0..{n - 1}).",
                           f"choose channels between 0 and {n - 1}.")
    a = arr[..., ca[0]] if len(ca) == 1 else arr[..., ca]
    b = arr[..., cb[0]] if len(cb) == 1 else arr[..., cb]
    report, raw = scan_arrays(a, b, len(ca) > 1, len(cb) > 1, name)
    report.source = f"channels {ca} -> {cb} of {name}"
    report.raise_if_bad()
    source = {"kind": "channels", "channels_a": ca, "channels_b": cb, "channel_axis": channel_axis,
              "shape": list(np.shape(array)), "dtype": arr.dtype.name}
    return _build(raw, config, source, hints_a=[name], hints_b=[name])


def from_files(file_a, file_b, config: DataConfig | None = None) -> PairedDataset:
    """One pair (or one pair per slice for stacks) from two image files."""
    from ..io import read_image

    config = config or DataConfig()
    file_a, file_b = Path(file_a), Path(file_b)
    a, b = read_image(file_a), read_image(file_b)
    report, raw = scan_arrays(a, b, None, None, file_a.stem)
    report.source = f"A={file_a} and B={file_b}"
    report.raise_if_bad()
    for p in raw:
        p.files = {"a": str(file_a), "b": str(file_b)}
    source = {"kind": "files", "a": str(file_a), "b": str(file_b)}
    return _build(raw, config, source, hints_a=[file_a.name], hints_b=[file_b.name])


def from_ab_file(path, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from one side-by-side AB image (or AB stack)."""
    config = config or DataConfig()
    report, raw = scan_ab_files([Path(path)], config.direction, f"AB file {path} ({config.direction})")
    report.raise_if_bad()
    return _build(raw, config, {"kind": "ab_file", "path": str(path), "direction": config.direction})


def from_paths(source, target=None, config: DataConfig | None = None) -> PairedDataset:
    """The CLI's ``--source A --target B``: file + file (:func:`from_files`), folder + folder
    (:func:`from_folders`); with no target, a folder of AB images (:func:`from_ab_folder`),
    one AB file, or one multichannel file split by ``config.channels_a/b``."""
    from ..io import read_image

    config = config or DataConfig()
    src = Path(source)
    if not src.exists():
        raise DatasetError(f"source {src} does not exist.", "check the path.")
    if target is None:
        if src.is_dir():
            return from_ab_folder(src, config)
        if config.channels_a is not None or config.channels_b is not None:
            ds = from_channels(read_image(src), config=config, name=src.stem)
            ds.source.update(path=str(src))
            return ds
        return from_ab_file(src, config)
    tgt = Path(target)
    if not tgt.exists():
        raise DatasetError(f"target {tgt} does not exist.", "check the path.")
    if src.is_dir() and tgt.is_dir():
        return from_folders(src, tgt, config)
    if src.is_file() and tgt.is_file():
        return from_files(src, tgt, config)
    raise DatasetError(f"source {src} is a {'folder' if src.is_dir() else 'file'} but target {tgt} is a "
                       f"{'folder' if tgt.is_dir() else 'file'}.",
                       "pass two files or two folders (whose files pair up by name).")


def from_spec(spec, config: DataConfig | None = None) -> PairedDataset:
    """Rebuild a dataset from a path (as :func:`from_paths` with no target), a
    ``{"source": ..., "target": ...}`` dict, or a ``PairedDataset.source`` dict of a file-based
    dataset (kinds folders, files, ab, ab_file, channels)."""
    from ..io import read_image

    config = config or DataConfig()
    if isinstance(spec, (str, Path)):
        return from_paths(spec, None, config)
    spec = dict(spec or {})
    kind = spec.get("kind")
    if kind is None and "source" in spec:
        return from_paths(spec["source"], spec.get("target"), config)
    if kind == "folders":
        return from_folders(spec["a"], spec["b"], config)
    if kind == "files":
        return from_files(spec["a"], spec["b"], config)
    if kind == "ab":
        return from_ab_folder(spec["dir"], config.replace(direction=spec.get("direction", config.direction)))
    if kind == "ab_file":
        return from_ab_file(spec["path"], config.replace(direction=spec.get("direction", config.direction)))
    if kind == "channels" and "path" in spec:
        return from_channels(read_image(spec["path"]), spec["channels_a"], spec["channels_b"], config,
                             spec.get("channel_axis", -1), name=Path(spec["path"]).stem)
    raise DatasetError(f"cannot rebuild a dataset from source kind {kind!r} (in-memory arrays are not stored).",
                       "pass the files or folders again.")


# -- writing AB files ------------------------------------------------------------------------

def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "pair"


def write_ab(dataset_or_raw_pairs, out_dir) -> list[Path]:
    """Write each pair as one side-by-side tif (A left, B right) in the original data dtype,
    named ``<pair.name>.tif``; ``from_ab_folder(out_dir)`` reads back identical raw pairs.

    Accepts a PairedDataset, a list of :class:`Pair` with ``raw_a``/``raw_b``, or a list of
    ``(name, raw_a, raw_b)`` with channel-first ``[C, H, W]`` arrays. Both sides need the same
    channel count, 1 (written ``[H, 2W]``) or 3/4 (written ``[H, 2W, C]``). When A and B dtypes
    differ the file holds their common dtype and records both, so reading restores them.
    """
    from ..io import write_image

    items = dataset_or_raw_pairs.pairs if isinstance(dataset_or_raw_pairs, PairedDataset) else dataset_or_raw_pairs
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for item in items:
        if isinstance(item, Pair):
            name, ra, rb = item.name, item.raw_a, item.raw_b
        else:
            name, ra, rb = item
        if ra is None or rb is None:
            raise InputError(f"pair {name} keeps no raw data to write.", "build the dataset with from_* constructors.")
        ra, rb = np.asarray(ra), np.asarray(rb)
        if ra.ndim != 3 or rb.ndim != 3 or ra.shape[1:] != rb.shape[1:]:
            raise InputError(f"pair {name}: A {list(ra.shape)} and B {list(rb.shape)} are not channel-first "
                             "images of the same size.", "pass [C, H, W] arrays with equal H and W.")
        c = ra.shape[0]
        if rb.shape[0] != c or c not in (1, 3, 4):
            raise InputError(f"pair {name}: A has {ra.shape[0]} and B {rb.shape[0]} channels; side-by-side "
                             "files need the same count on both sides, 1, 3 or 4.",
                             "write separate A and B folders instead.")
        dtype = np.result_type(ra.dtype, rb.dtype)
        ab = np.concatenate([ra.astype(dtype), rb.astype(dtype)], axis=2)
        if not (np.array_equal(ab[:, :, :ra.shape[2]].astype(ra.dtype), ra)
                and np.array_equal(ab[:, :, ra.shape[2]:].astype(rb.dtype), rb)):
            raise InputError(f"pair {name}: A ({ra.dtype}) and B ({rb.dtype}) have no common dtype that "
                             "keeps both exactly.", "write separate A and B folders instead.")
        ab = ab[0] if c == 1 else np.moveaxis(ab, 0, -1)
        stem = _safe_name(name)
        while stem in used:
            stem += "_"
        used.add(stem)
        meta = {"pix2pix_ab": {"dtype_left": ra.dtype.name, "dtype_right": rb.dtype.name, "name": name}}
        written.append(write_image(out_dir / f"{stem}.tif", ab, metadata=meta))
    return written
