"""Stage 2 of the data path: ``validate(loaded)`` checks what :func:`~.load.load` read.

Every mismatch is listed in a :class:`PairingReport` (nothing is raised for bad data until the
end): layouts, NaN/inf, dimensions, slice counts, sizes, channel counts per side. With
``strict`` (what :func:`~.pipeline.pair` uses) a report that is not ok raises
:class:`~napari_pix2pix.errors.DatasetError` with the report attached; ``validate_folders`` /
``validate_ab_folder`` / ``validate_arrays`` return the report of a source without raising.

Array layouts follow napari: ``[..., Y, X]`` for gray images and stacks (``[Y, X]``,
``[Z, Y, X]``, ``[T, Z, Y, X]``: one pair per 2-D slice), ``[..., Y, X, C]`` for colour
(channel-last) images. Auto layout rule (``rgb=None``): an array with 3 or more dimensions whose
last axis has 3 or 4 entries (and whose next-to-last axis has more than 4) is channel-last
RGB(A); anything else is gray (a stack if it has more than 2 dimensions). Internally every
slice becomes channel-first ``[C, H, W]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import DatasetError, InputError
from ..limits import MAX_IMAGE_DIMS

# Problem names used in Mismatch.problem (tests and faces may match on them).
MISSING_PARTNER = "missing partner"
SIZE_MISMATCH = "size mismatch"
SLICE_MISMATCH = "slice count mismatch"
CHANNEL_MISMATCH = "channel count differs"
UNREADABLE = "unreadable file"
EMPTY = "empty folder"
MISSING_FOLDER = "missing folder"
NOT_FINITE = "NaN/inf values"
ODD_WIDTH = "odd width"
DUPLICATE = "duplicate name"
BAD_LAYOUT = "not an image"

_FIXES = {
    MISSING_PARTNER: ("give every A file a B file with the same name (any image extension), "
                      "or remove the unpaired files"),
    SIZE_MISMATCH: "make both files of a pair the same height and width (crop or resize one of them)",
    SLICE_MISMATCH: "make both stacks of a pair hold the same number of slices",
    CHANNEL_MISMATCH: "make every image of one side the same kind (all gray or all RGB)",
    UNREADABLE: "replace or remove the unreadable files",
    EMPTY: "put image files (.tif, .png, .jpg, .npy) in the folder, or choose another folder",
    MISSING_FOLDER: "check the folder path",
    NOT_FINITE: "replace NaN/inf pixels (e.g. numpy.nan_to_num) or crop them away",
    ODD_WIDTH: "AB images hold A and B side by side, so their width must be even; re-save them",
    DUPLICATE: "keep one file per name in each folder (e.g. not both x.png and x.tif)",
    BAD_LAYOUT: "pass 2-D images [Y, X], RGB images [Y, X, 3] or stacks [Z, Y, X]",
}


@dataclass
class Mismatch:
    """One problem: ``name`` (file name, pair name or folder), ``problem`` (one of the
    constants above), ``detail`` (human text with sizes, paths)."""

    name: str
    problem: str
    detail: str

    def format(self) -> str:
        return f"{self.name}: {self.problem} - {self.detail}"


@dataclass
class PairingReport:
    """What pairing found. ``items``: one dict per usable pair (name, shape_a, shape_b,
    dtype_a, dtype_b; shapes as read, before slicing); ``mismatches``: every problem;
    ``source``: a short description of what was paired; ``ignored``: files skipped because
    their extension is not an image type."""

    pairs: int = 0
    items: list = field(default_factory=list)
    mismatches: list = field(default_factory=list)
    source: str = ""
    ignored: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.pairs > 0

    def add(self, name: str, problem: str, detail: str) -> None:
        self.mismatches.append(Mismatch(str(name), problem, detail))

    def format(self) -> str:
        lines = [f"Pairing {self.source}".rstrip() + ":" if self.source else "Pairing:"]
        lines.append(f"  {len(self.items)} matched item(s), {self.pairs} training pair(s) (2-D slices)")
        shapes = Counter((tuple(i["shape_a"]), tuple(i["shape_b"]), i["dtype_a"], i["dtype_b"]) for i in self.items)
        for (sa, sb, da, db), n in shapes.most_common():
            lines.append(f"  {n} x  A {list(sa)} {da}  ->  B {list(sb)} {db}")
        if self.ignored:
            lines.append(f"  ignored (not images): {', '.join(self.ignored)}")
        if self.mismatches:
            lines.append(f"  {len(self.mismatches)} problem(s):")
            lines.extend(f"    {m.format()}" for m in self.mismatches)
        elif self.pairs == 0:
            lines.append("  no pairs found")
        else:
            lines.append("  no problems")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "pairs": int(self.pairs),
            "ok": self.ok,
            "source": self.source,
            "items": [_jsonable(i) for i in self.items],
            "mismatches": [asdict(m) for m in self.mismatches],
            "ignored": list(self.ignored),
        }

    def fix(self) -> str:
        kinds = []
        for m in self.mismatches:
            if m.problem not in kinds:
                kinds.append(m.problem)
        if not kinds:
            return "check the inputs."
        return "; ".join(_FIXES.get(k, "fix the files listed") for k in kinds) + "."

    def raise_if_bad(self) -> None:
        """Raise DatasetError listing every mismatch (or 'no pairs') when not ok."""
        if self.ok:
            return
        if self.mismatches:
            lines = "\n".join(f"  {m.format()}" for m in self.mismatches)
            problem = f"{len(self.mismatches)} problem(s) pairing {self.source or 'the data'}:\n{lines}\n"
        else:
            problem = f"no image pairs found in {self.source or 'the data'}."
        raise DatasetError(problem, self.fix() if self.mismatches else _FIXES[EMPTY] + ".", report=self)


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, (np.integer,)):
            v = int(v)
        out[k] = v
    return out


# -- layouts ---------------------------------------------------------------------------------

def is_channel_last(arr: np.ndarray, rgb: bool | None = None) -> bool:
    """Whether ``arr`` is ``[..., Y, X, C]``: ``rgb`` if given, else the auto rule (ndim >= 3,
    the last axis has 3 or 4 entries and the one before it more than 4)."""
    if rgb is not None:
        return bool(rgb)
    return arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.shape[-2] > 4


def to_slices(arr: np.ndarray, rgb: bool | None = None) -> np.ndarray:
    """napari layout -> channel-first slices ``[S, C, Y, X]`` (S = product of the leading axes).

    ``[Y, X]`` -> ``[1, 1, Y, X]``; ``[Z, Y, X]`` -> ``[Z, 1, Y, X]``; ``[Y, X, 3]`` (rgb) ->
    ``[1, 3, Y, X]``; ``[T, Z, Y, X, C]`` (rgb) -> ``[T*Z, C, Y, X]``. Raises InputError for
    arrays with too few dimensions.
    """
    arr = np.asarray(arr)
    if is_channel_last(arr, rgb):
        if arr.ndim < 3:
            raise InputError(f"a colour (channel-last) image needs [Y, X, C], got shape {list(arr.shape)}.",
                             "pass rgb=False for gray images.")
        y, x, c = arr.shape[-3:]
        return np.moveaxis(arr.reshape((-1, y, x, c)), -1, 1)
    if arr.ndim < 2:
        raise InputError(f"an image needs at least 2 dimensions [Y, X], got shape {list(arr.shape)}.",
                         _FIXES[BAD_LAYOUT] + ".")
    y, x = arr.shape[-2:]
    return arr.reshape((-1, 1, y, x))


def spatial_shape(arr: np.ndarray, rgb: bool | None = None) -> tuple[int, int]:
    return tuple(arr.shape[-3:-1]) if is_channel_last(arr, rgb) else tuple(arr.shape[-2:])


def _n_slices(arr: np.ndarray, rgb: bool | None) -> int:
    lead = arr.shape[:-3] if is_channel_last(arr, rgb) else arr.shape[:-2]
    return int(np.prod(lead)) if lead else 1


def _n_channels(arr: np.ndarray, rgb: bool | None) -> int:
    return int(arr.shape[-1]) if is_channel_last(arr, rgb) else 1


def _nonfinite_count(arr: np.ndarray) -> tuple[int, int]:
    if arr.dtype.kind not in "fc":
        return 0, 0
    finite = np.isfinite(arr)
    if finite.all():
        return 0, 0
    n_nan = int(np.isnan(arr).sum())
    return n_nan, int((~finite).sum()) - n_nan


# -- pair checks shared by all validators ---------------------------------------------------

@dataclass
class RawPair:
    """A checked pair as read: ``a``/``b`` napari-layout arrays, ``rgb_a``/``rgb_b`` their
    layout flags, ``name`` (file stem or given name), ``files`` (paths, for the source dict)."""

    name: str
    a: np.ndarray
    b: np.ndarray
    rgb_a: bool
    rgb_b: bool
    files: dict = field(default_factory=dict)


def _check_pair(report: PairingReport, name: str, a: np.ndarray, b: np.ndarray,
                rgb_a: bool | None, rgb_b: bool | None, label_a: str = "A", label_b: str = "B",
                files: dict | None = None) -> RawPair | None:
    ok = True
    for side, arr in ((label_a, a), (label_b, b)):
        if arr.ndim < 2 or arr.size == 0 or arr.dtype.kind not in "biuf":
            report.add(name, BAD_LAYOUT, f"{side} has shape {list(arr.shape)} and dtype {arr.dtype}")
            ok = False
            continue
        n_nan, n_inf = _nonfinite_count(arr)
        if n_nan or n_inf:
            report.add(name, NOT_FINITE, f"{side} contains {n_nan} NaN and {n_inf} infinite pixels")
            ok = False
    if not ok:
        return None
    ra, rb = is_channel_last(a, rgb_a), is_channel_last(b, rgb_b)
    if ra and a.ndim < 3 or rb and b.ndim < 3:
        report.add(name, BAD_LAYOUT, f"a colour image needs [Y, X, C]; got {label_a} {list(a.shape)}, "
                                     f"{label_b} {list(b.shape)}")
        return None
    for side, arr, rgb in ((label_a, a, ra), (label_b, b, rb)):
        extra = arr.ndim - (1 if rgb else 0)
        if extra > MAX_IMAGE_DIMS:  # the rule translate applies: at most [T, Z, Y, X] besides channels
            report.add(name, BAD_LAYOUT, f"{side} has {extra} dimensions besides channels (shape {list(arr.shape)}); "
                                         f"at most {MAX_IMAGE_DIMS} (T, Z, Y, X) are supported")
            ok = False
    if not ok:
        return None
    sa, sb = spatial_shape(a, ra), spatial_shape(b, rb)
    na, nb = _n_slices(a, ra), _n_slices(b, rb)
    if na != nb:
        report.add(name, SLICE_MISMATCH, f"{label_a} has {na} slice(s) (shape {list(a.shape)}), "
                                         f"{label_b} has {nb} (shape {list(b.shape)})")
        ok = False
    if sa != sb:
        report.add(name, SIZE_MISMATCH, f"{label_a} is {sa[0]}x{sa[1]} (height x width), "
                                        f"{label_b} is {sb[0]}x{sb[1]}")
        ok = False
    if not ok:
        return None
    report.items.append({"name": name, "shape_a": list(a.shape), "shape_b": list(b.shape),
                         "dtype_a": a.dtype.name, "dtype_b": b.dtype.name, "slices": na})
    report.pairs += na
    return RawPair(name, a, b, ra, rb, dict(files or {}))


def _check_channels(report: PairingReport, pairs: list[RawPair]) -> list[RawPair]:
    """Every image of one side must have the same channel count; report the odd ones out."""
    bad = set()
    for side in ("a", "b"):
        counts = Counter(_n_channels(getattr(p, side), getattr(p, f"rgb_{side}")) for p in pairs)
        if len(counts) <= 1:
            continue
        (common, n1), (_, n2) = counts.most_common(2)
        tie = n1 == n2  # no majority: name every image of this side
        summary = ", ".join(f"{n} with {c}" for c, n in sorted(counts.items()))
        for p in pairs:
            c = _n_channels(getattr(p, side), getattr(p, f"rgb_{side}"))
            if tie or c != common:
                report.add(p.name, CHANNEL_MISMATCH,
                           f"{side.upper()} has {c} channel(s) (shape {list(getattr(p, side).shape)}); "
                           f"{side.upper()} images by channel count: {summary}")
                bad.add(p.name)
    if bad:
        report.items = [i for i in report.items if i["name"] not in bad]
        report.pairs = sum(i["slices"] for i in report.items)
    return [p for p in pairs if p.name not in bad]


# -- the stage ---------------------------------------------------------------------------------

@dataclass
class Validated:
    """What :func:`validate` passed: the ``pairs`` (:class:`RawPair`, in order) and the
    ``report``, with the :class:`~.load.Loaded` they came from."""

    loaded: object
    report: PairingReport
    pairs: list


def validate(loaded, strict: bool = True) -> Validated:
    """Check every item of ``loaded`` (its reading problems first, then its own checks), then the
    channel counts of each side; with ``strict``, raise DatasetError when the report is not ok."""
    report, pairs = loaded.report, []
    for item in loaded.items:
        for problem in item.problems:
            report.add(*problem)
        if item.a is None or item.b is None:
            continue
        p = _check_pair(report, item.name, item.a, item.b, item.rgb_a, item.rgb_b, item.label_a, item.label_b,
                        files=item.files)
        if p is not None:
            pairs.append(p)
    validated = Validated(loaded, report, _check_channels(report, pairs))
    if strict:
        report.raise_if_bad()
    return validated


def _report(spec) -> PairingReport:
    from .load import load

    return validate(load(spec), strict=False).report


def validate_arrays(a, b, rgb_a: bool | None = None, rgb_b: bool | None = None, names=None) -> PairingReport:
    """Check two napari-layout arrays (or lists of them) for pairing; never raises for bad data."""
    from .spec import PairSpec

    return _report(PairSpec.arrays(a, b, rgb_a=rgb_a, rgb_b=rgb_b, names=names))


def validate_folders(dir_a, dir_b) -> PairingReport:
    """Check two folders whose files pair up by name (any mix of tif/png/jpg/npy); never raises."""
    from .spec import PairSpec

    return _report(PairSpec.folders(dir_a, dir_b))


def validate_ab_folder(folder, direction: str = "AtoB") -> PairingReport:
    """Check a folder of side-by-side AB images; never raises for bad data."""
    from ..config import DataConfig
    from .spec import PairSpec

    return _report(PairSpec.ab_folder(folder, DataConfig(direction=direction)))


# -- model check -------------------------------------------------------------------------------

def _kind(c: int) -> str:
    return {1: "grayscale", 3: "RGB", 4: "RGBA"}.get(c, f"{c}-channel")


def check_model_channels(dataset, in_channels: int, out_channels: int) -> None:
    """Raise DatasetError when the dataset's channels (``dataset.in_channels`` for A,
    ``dataset.out_channels`` for B, after label encoding) differ from the model's."""
    problems = []
    if dataset.in_channels != in_channels:
        problems.append(f"the source (A) is {_kind(dataset.in_channels)} ({dataset.in_channels} channel(s)) "
                        f"but the model expects {_kind(in_channels)} input ({in_channels} channel(s))")
    if dataset.out_channels != out_channels:
        problems.append(f"the target (B) is {_kind(dataset.out_channels)} ({dataset.out_channels} channel(s)) "
                        f"but the model produces {_kind(out_channels)} output ({out_channels} channel(s))")
    if problems:
        raise DatasetError("Channel mismatch: " + "; ".join(problems) + ".",
                           "convert the images (e.g. gray to RGB or RGB to gray), pick the channels with "
                           "channels_a/channels_b, or use a model with "
                           f"in_channels={dataset.in_channels} and out_channels={dataset.out_channels}.")
