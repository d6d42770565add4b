"""Checking paired sources before training: every mismatch is listed, nothing is raised.

``validate_folders`` / ``validate_ab_folder`` / ``validate_arrays`` return a
:class:`PairingReport`; the ``from_*`` constructors in :mod:`.sources` raise
:class:`~napari_pix2pix.errors.DatasetError` (with the report attached) when it is not ok.

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
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageReadError, InputError
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


# -- arrays ------------------------------------------------------------------------------------

def _as_list(x) -> list:
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, (list, tuple)):
        return [np.asarray(v) for v in x]
    return [np.asarray(x)]


def scan_arrays(a, b, rgb_a: bool | None = None, rgb_b: bool | None = None,
                names=None) -> tuple[PairingReport, list[RawPair]]:
    """Check arrays (or equal-length lists of arrays) pairwise; returns the report and the
    usable pairs. ``names``: a base name or one name per array."""
    la, lb = _as_list(a), _as_list(b)
    report = PairingReport(source="arrays")
    if len(la) != len(lb):
        report.add("arrays", MISSING_PARTNER, f"{len(la)} A array(s) but {len(lb)} B array(s)")
        return report, []
    if names is None:
        names = ["pair"] if len(la) == 1 else [f"pair{i:03d}" for i in range(len(la))]
    elif isinstance(names, str):
        names = [names] if len(la) == 1 else [f"{names}{i:03d}" for i in range(len(la))]
    names = [str(n) for n in names]
    if len(names) != len(la):
        raise InputError(f"{len(names)} name(s) for {len(la)} array pair(s).", "pass one name per pair, or none.")
    if not la:
        report.add("arrays", EMPTY, "no arrays given")
        return report, []
    pairs = []
    for name, xa, xb in zip(names, la, lb):
        p = _check_pair(report, name, xa, xb, rgb_a, rgb_b)
        if p is not None:
            pairs.append(p)
    return report, _check_channels(report, pairs)


def validate_arrays(a, b, rgb_a: bool | None = None, rgb_b: bool | None = None, names=None) -> PairingReport:
    """Check two napari-layout arrays (or lists of them) for pairing; never raises for bad data."""
    return scan_arrays(a, b, rgb_a, rgb_b, names)[0]


# -- folders -----------------------------------------------------------------------------------

def _list_images(folder: Path, report: PairingReport, side: str) -> dict[str, Path] | None:
    from ..io import IMAGE_EXTENSIONS

    if not folder.is_dir():
        report.add(str(folder), MISSING_FOLDER, f"{side} folder {folder} does not exist or is not a folder")
        return None
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            report.ignored.append(f"{side}/{p.name}")
            continue
        if p.stem in files:
            report.add(p.name, DUPLICATE, f"{side} folder holds both {files[p.stem].name} and {p.name}")
            continue
        files[p.stem] = p
    if not files:
        report.add(folder.name or str(folder), EMPTY, f"{side} folder {folder} holds no image files "
                                                      "(.tif, .tiff, .png, .jpg, .jpeg, .npy)")
    return files


def _read(path: Path, report: PairingReport, side: str) -> np.ndarray | None:
    from ..io import read_image

    try:
        return read_image(path)
    except ImageReadError as exc:
        report.add(path.name, UNREADABLE, f"{side} file {path}: {exc.problem}")
        return None


def scan_folders(dir_a, dir_b) -> tuple[PairingReport, list[RawPair]]:
    """Match files of two folders by stem, read and check them; returns report and usable pairs."""
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    report = PairingReport(source=f"A={dir_a} and B={dir_b}")
    fa, fb = _list_images(dir_a, report, "A"), _list_images(dir_b, report, "B")
    if fa is None or fb is None:
        return report, []
    for stem in sorted(set(fa) - set(fb)):
        report.add(fa[stem].name, MISSING_PARTNER, f"{fa[stem]} (A) has no file named {stem}.* in {dir_b} (B)")
    for stem in sorted(set(fb) - set(fa)):
        report.add(fb[stem].name, MISSING_PARTNER, f"{fb[stem]} (B) has no file named {stem}.* in {dir_a} (A)")
    pairs = []
    for stem in sorted(set(fa) & set(fb)):
        xa, xb = _read(fa[stem], report, "A"), _read(fb[stem], report, "B")
        if xa is None or xb is None:
            continue
        name = stem
        label_a, label_b = f"A {fa[stem].name}", f"B {fb[stem].name}"
        p = _check_pair(report, name, xa, xb, None, None, label_a, label_b,
                        files={"a": str(fa[stem]), "b": str(fb[stem])})
        if p is not None:
            pairs.append(p)
    return report, _check_channels(report, pairs)


def validate_folders(dir_a, dir_b) -> PairingReport:
    """Check two folders whose files pair up by name (any mix of tif/png/jpg/npy); never raises."""
    return scan_folders(dir_a, dir_b)[0]


def split_ab(arr: np.ndarray, rgb: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side image at half its width: (left, right), same layout as ``arr``."""
    rgb = is_channel_last(arr, rgb)
    axis = arr.ndim - 2 if rgb else arr.ndim - 1
    w = arr.shape[axis] // 2
    left = np.take(arr, np.arange(w), axis=axis)
    right = np.take(arr, np.arange(w, 2 * w), axis=axis)
    return left, right


def _restore_dtype(arr: np.ndarray, name: str | None) -> np.ndarray:
    """Cast back to the dtype recorded by write_ab when that is exact."""
    if not name:
        return arr
    try:
        dtype = np.dtype(name)
    except TypeError:
        return arr
    if dtype == arr.dtype:
        return arr
    cast = arr.astype(dtype)
    return cast if np.array_equal(cast, arr) else arr


def scan_ab_folder(folder, direction: str = "AtoB") -> tuple[PairingReport, list[RawPair]]:
    """Read side-by-side AB images (A left for AtoB, B left for BtoA) and check them."""
    folder = Path(folder)
    report = PairingReport(source=f"AB folder {folder} ({direction})")
    files = _list_images(folder, report, "AB")
    if not files:
        return report, []
    return scan_ab_files(list(files.values()), direction, report=report)


def scan_ab_files(paths: list, direction: str = "AtoB", source: str = "",
                  report: PairingReport | None = None) -> tuple[PairingReport, list[RawPair]]:
    """Read and split the given AB files (see :func:`scan_ab_folder`)."""
    from ..io import read_tif_metadata

    report = report or PairingReport(source=source)
    pairs = []
    for path in map(Path, paths):
        stem = path.stem
        arr = _read(path, report, "AB")
        if arr is None:
            continue
        if arr.ndim < 2:
            report.add(path.name, BAD_LAYOUT, f"shape {list(arr.shape)}")
            continue
        rgb = is_channel_last(arr)
        width = arr.shape[-2] if rgb else arr.shape[-1]
        if width % 2:
            report.add(path.name, ODD_WIDTH, f"{path} is {width} pixels wide; A and B halves must be equal")
            continue
        left, right = split_ab(arr, rgb)
        meta = read_tif_metadata(path).get("pix2pix_ab", {}) or {}
        left = _restore_dtype(left, meta.get("dtype_left"))
        right = _restore_dtype(right, meta.get("dtype_right"))
        if direction == "BtoA":
            left, right = right, left
        p = _check_pair(report, stem, left, right, rgb, rgb, f"A half of {path.name}", f"B half of {path.name}",
                        files={"ab": str(path)})
        if p is not None:
            pairs.append(p)
    return report, _check_channels(report, pairs)


def validate_ab_folder(folder, direction: str = "AtoB") -> PairingReport:
    """Check a folder of side-by-side AB images; never raises for bad data."""
    return scan_ab_folder(folder, direction)[0]


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
