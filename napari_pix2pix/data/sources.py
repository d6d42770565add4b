"""Stage 3 of the data path: ``build_dataset(validated)`` -> :class:`PairedDataset`; and the
``from_*`` shortcuts, each one :class:`~.spec.PairSpec` run through :func:`~.pipeline.pair`
(``load -> validate -> build_dataset``, each stage once).

Building detects labels, fits each side's normalisation and cuts stacks into 2-D pairs. A
source that fails validation raises :class:`~napari_pix2pix.errors.DatasetError` with the full
report before anything is built; an empty source is an error, never an empty dataset.

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
from .spec import PairSpec
from .validate import to_slices

_LABEL_HINT = re.compile(r"label|mask|seg|annot|instance|(^|[^a-z])gt([^a-z]|$)", re.IGNORECASE)



# The validation pairs are a property of the data, not of a training run: one seed for every
# face (see PairedDataset.holdout).
HOLDOUT_SEED = 0

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

    def holdout(self, fraction: float) -> tuple["PairedDataset", "PairedDataset | None"]:
        """The training/validation split every face uses: :meth:`split` with the fixed
        :data:`HOLDOUT_SEED`, so the same data and fraction hold out the same pairs in napari,
        the CLI and the nodes, whatever the training seed."""
        return self.split(fraction, seed=HOLDOUT_SEED)

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


def _source(validated) -> dict:
    """The dataset's JSON-safe ``source``: what load described, with the files of the pairs kept."""
    loaded, raw = validated.loaded, validated.pairs
    source = dict(loaded.source)
    if source.get("kind") == "folders":
        source["files"] = [{"a": p.files["a"], "b": p.files["b"]} for p in raw]
    elif source.get("kind") == "ab":
        source["files"] = [p.files["ab"] for p in raw]
    source.setdefault("items", [{"name": p.name, "shape_a": list(p.a.shape), "shape_b": list(p.b.shape),
                                 "dtype_a": p.a.dtype.name, "dtype_b": p.b.dtype.name} for p in raw])
    return source


def build_dataset(validated) -> PairedDataset:
    """The :class:`PairedDataset` of validated pairs: labels detected (or as configured), each
    side's normalisation fitted on all its slices, one :class:`Pair` per 2-D slice."""
    loaded, raw = validated.loaded, validated.pairs
    config = loaded.spec.config
    sa = [to_slices(p.a, p.rgb_a) for p in raw]
    sb = [to_slices(p.b, p.rgb_b) for p in raw]
    hints_a = list(loaded.hints_a) + [p.name for p in raw] + [p.files.get("a", "") for p in raw]
    hints_b = list(loaded.hints_b) + [p.name for p in raw] + [p.files.get("b", "") for p in raw]
    a_lab = _side_is_labels(config.a_is_labels, config.norm_a, sa, hints_a, "A")
    b_lab = _side_is_labels(config.b_is_labels, config.norm_b, sb, hints_b, "B")
    flat_a = [s[i] for s in sa for i in range(s.shape[0])]
    flat_b = [s[i] for s in sb for i in range(s.shape[0])]
    try:
        norm_a = fit_normalization(flat_a, config.norm_a, is_labels=a_lab)
        norm_b = fit_normalization(flat_b, config.norm_b, is_labels=b_lab)
    except InputError as exc:
        raise DatasetError(f"{loaded.source.get('kind', 'data')} source: {exc.problem}", exc.fix) from exc
    pairs = []
    for p, xa, xb in zip(raw, sa, sb):
        ya, yb = norm_a.forward(xa), norm_b.forward(xb)
        for i, name in enumerate(_slice_names(p.name, xa.shape[0])):
            pairs.append(Pair(a=ya[i], b=yb[i], name=name, raw_a=xa[i], raw_b=xb[i]))
    return PairedDataset(pairs=pairs, norm_a=norm_a, norm_b=norm_b, a_is_labels=a_lab, b_is_labels=b_lab,
                         source=_source(validated), foreground_bias=float(config.foreground_bias))


# -- shortcuts: one spec, one pass ------------------------------------------------------------

def _pair(spec) -> PairedDataset:
    from .pipeline import pair

    return pair(spec)


def from_arrays(a, b, config: DataConfig | None = None, *, rgb_a: bool | None = None,
                rgb_b: bool | None = None, names=None) -> PairedDataset:
    """Pairs from napari-layout arrays (or equal-length lists of arrays): ``[Y, X]``,
    ``[Y, X, C]`` (rgb), ``[Z, Y, X]`` / ``[T, Z, Y, X]`` stacks (one pair per slice).
    ``names``: a base name or one per array (default ``pair``)."""
    return _pair(PairSpec.arrays(a, b, config, rgb_a=rgb_a, rgb_b=rgb_b, names=names))


def from_folders(dir_a, dir_b, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from two folders matched by file stem (any mix of tif/png/jpg/npy; stacks give
    one pair per slice)."""
    return _pair(PairSpec.folders(dir_a, dir_b, config))


def from_ab_folder(folder, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from side-by-side images split at half width: A is the left half for
    ``config.direction == 'AtoB'``, the right half for ``'BtoA'``."""
    return _pair(PairSpec.ab_folder(folder, config))


def from_channels(array, channels_a=None, channels_b=None, config: DataConfig | None = None,
                  channel_axis: int = -1, name: str = "image") -> PairedDataset:
    """A and B from channels of one multichannel image or stack: ``array`` has a channel
    axis (``channel_axis``, default last, e.g. ``[Y, X, C]`` or ``[Z, Y, X, C]``); A takes
    ``channels_a`` (default ``config.channels_a``), B ``channels_b``. One channel -> gray."""
    return _pair(PairSpec.channels(np.asarray(array), channels_a, channels_b, config, channel_axis=channel_axis,
                                   name=name))


def from_files(file_a, file_b, config: DataConfig | None = None) -> PairedDataset:
    """One pair (or one pair per slice for stacks) from two image files."""
    return _pair(PairSpec.files(file_a, file_b, config))


def from_ab_file(path, config: DataConfig | None = None) -> PairedDataset:
    """Pairs from one side-by-side AB image (or AB stack)."""
    return _pair(PairSpec.ab_file(path, config))


def from_paths(source, target=None, config: DataConfig | None = None) -> PairedDataset:
    """The CLI's ``--source A --target B``: file + file (:func:`from_files`), folder + folder
    (:func:`from_folders`); with no target, a folder of AB images (:func:`from_ab_folder`),
    one AB file, or one multichannel file split by ``config.channels_a/b``."""
    return _pair(PairSpec.paths(source, target, config))


def from_spec(spec, config: DataConfig | None = None) -> PairedDataset:
    """Rebuild a dataset from a path (as :func:`from_paths` with no target), a
    ``{"source": ..., "target": ...}`` dict, or a ``PairedDataset.source`` dict of a file-based
    dataset (kinds folders, files, ab, ab_file, channels)."""
    return _pair(PairSpec.from_source(spec, config))


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
