"""Stage 1 of the data path: ``load(spec)`` reads what a :class:`~.spec.PairSpec` names.

Folders are listed and matched by file stem, files read, AB images split at half width, the
channels of one image picked. Nothing is judged here except what stops reading (a missing
folder or partner, an unreadable file, an odd AB width): those problems go into the
:class:`~.validate.PairingReport` (in the order they are met, item by item) and
:func:`~.validate.validate` adds its own and decides. Faces never call this directly: they call
:func:`~.pipeline.pair`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageReadError, InputError
from .validate import (BAD_LAYOUT, DUPLICATE, EMPTY, MISSING_FOLDER, MISSING_PARTNER, ODD_WIDTH, UNREADABLE,
                       PairingReport, is_channel_last)

#: the most channels an axis may have to be taken for the channel axis when it is detected
MAX_DETECTED_CHANNELS = 8


@dataclass
class Item:
    """One would-be pair as read: ``a``/``b`` napari-layout arrays (None when unreadable),
    their layout flags, labels for messages, ``files`` (paths, for the source dict) and the
    ``problems`` met while reading it ((name, problem, detail), reported before its checks)."""

    name: str
    a: np.ndarray | None
    b: np.ndarray | None
    rgb_a: bool | None = None
    rgb_b: bool | None = None
    label_a: str = "A"
    label_b: str = "B"
    files: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


@dataclass
class Loaded:
    """What :func:`load` read: the ``items`` in order, the ``report`` so far, the dataset's
    ``source`` description, name ``hints`` of each side for label detection and ``notes`` for the
    user (e.g. a detected channel axis)."""

    spec: object
    report: PairingReport
    items: list
    source: dict
    hints_a: list = field(default_factory=list)
    hints_b: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def load(spec, notes: list | None = None) -> Loaded:
    """Read the images ``spec`` names (see the module docstring). ``notes``: a list that receives
    the notes for the user as they arise (kept even when reading then fails)."""
    notes = [] if notes is None else notes
    loaded = _channels(spec, notes) if spec.kind == "channels" else _LOADERS[spec.kind](spec)
    loaded.notes = notes
    return loaded


# ------------------------------------------------------------------------------ arrays
def _as_list(x) -> list:
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, (list, tuple)):
        return [np.asarray(v) for v in x]
    return [np.asarray(x)]


def _arrays(spec, a=None, b=None, report_source: str = "arrays") -> Loaded:
    la, lb = _as_list(spec.source if a is None else a), _as_list(spec.target if b is None else b)
    names = spec.names
    report = PairingReport(source=report_source)
    loaded = Loaded(spec, report, [], {"kind": "arrays"}, hints_a=[names] if isinstance(names, str) else [])
    if len(la) != len(lb):
        report.add("arrays", MISSING_PARTNER, f"{len(la)} A array(s) but {len(lb)} B array(s)")
        return loaded
    if names is None:
        names = ["pair"] if len(la) == 1 else [f"pair{i:03d}" for i in range(len(la))]
    elif isinstance(names, str):
        names = [names] if len(la) == 1 else [f"{names}{i:03d}" for i in range(len(la))]
    names = [str(n) for n in names]
    if len(names) != len(la):
        raise InputError(f"{len(names)} name(s) for {len(la)} array pair(s).", "pass one name per pair, or none.")
    if not la:
        report.add("arrays", EMPTY, "no arrays given")
        return loaded
    loaded.items = [Item(n, xa, xb, spec.rgb_a, spec.rgb_b) for n, xa, xb in zip(names, la, lb)]
    return loaded


# ---------------------------------------------------------------------- files, folders
def _read(path: Path, item: Item, side: str) -> np.ndarray | None:
    from ..io import read_image

    try:
        return read_image(path)
    except ImageReadError as exc:
        item.problems.append((path.name, UNREADABLE, f"{side} file {path}: {exc.problem}"))
        return None


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


def _folders(spec) -> Loaded:
    dir_a, dir_b = Path(spec.source), Path(spec.target)
    report = PairingReport(source=f"A={dir_a} and B={dir_b}")
    loaded = Loaded(spec, report, [], {"kind": "folders", "a": str(dir_a), "b": str(dir_b)},
                    hints_a=[dir_a.name], hints_b=[dir_b.name])
    fa, fb = _list_images(dir_a, report, "A"), _list_images(dir_b, report, "B")
    if fa is None or fb is None:
        return loaded
    for stem in sorted(set(fa) - set(fb)):
        report.add(fa[stem].name, MISSING_PARTNER, f"{fa[stem]} (A) has no file named {stem}.* in {dir_b} (B)")
    for stem in sorted(set(fb) - set(fa)):
        report.add(fb[stem].name, MISSING_PARTNER, f"{fb[stem]} (B) has no file named {stem}.* in {dir_a} (A)")
    for stem in sorted(set(fa) & set(fb)):
        item = Item(stem, None, None, label_a=f"A {fa[stem].name}", label_b=f"B {fb[stem].name}",
                    files={"a": str(fa[stem]), "b": str(fb[stem])})
        item.a, item.b = _read(fa[stem], item, "A"), _read(fb[stem], item, "B")
        loaded.items.append(item)
    return loaded


def _files(spec) -> Loaded:
    from ..io import read_image

    file_a, file_b = Path(spec.source), Path(spec.target)
    a, b = read_image(file_a), read_image(file_b)
    rgb_a = rgb_b = None
    source = {"kind": "files", "a": str(file_a), "b": str(file_b)}
    if spec.channel_axis is not None:  # move it last; a 2-D side has no channel axis to move
        source["channel_axis"] = spec.channel_axis
        (a, rgb_a), (b, rgb_b) = ((np.moveaxis(x, spec.channel_axis, -1), True) if x.ndim >= 3 else (x, False)
                                  for x in (a, b))
    report = PairingReport(source=f"A={file_a} and B={file_b}")
    item = Item(file_a.stem, a, b, rgb_a, rgb_b, files={"a": str(file_a), "b": str(file_b)})
    return Loaded(spec, report, [item], source, hints_a=[file_a.name], hints_b=[file_b.name])


# ---------------------------------------------------------------------------- AB images
def split_ab(arr: np.ndarray, rgb: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side image at half its width: (left, right), same layout as ``arr``."""
    rgb = is_channel_last(arr, rgb)
    axis = arr.ndim - 2 if rgb else arr.ndim - 1
    w = arr.shape[axis] // 2
    return np.take(arr, np.arange(w), axis=axis), np.take(arr, np.arange(w, 2 * w), axis=axis)


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


def _ab_items(paths, direction: str) -> list[Item]:
    from ..io import read_tif_metadata

    items = []
    for path in map(Path, paths):
        item = Item(path.stem, None, None, label_a=f"A half of {path.name}", label_b=f"B half of {path.name}",
                    files={"ab": str(path)})
        items.append(item)
        arr = _read(path, item, "AB")
        if arr is None:
            continue
        if arr.ndim < 2:
            item.problems.append((path.name, BAD_LAYOUT, f"shape {list(arr.shape)}"))
            continue
        rgb = is_channel_last(arr)
        width = arr.shape[-2] if rgb else arr.shape[-1]
        if width % 2:
            item.problems.append((path.name, ODD_WIDTH, f"{path} is {width} pixels wide; A and B halves must be equal"))
            continue
        left, right = split_ab(arr, rgb)
        meta = read_tif_metadata(path).get("pix2pix_ab", {}) or {}
        left, right = _restore_dtype(left, meta.get("dtype_left")), _restore_dtype(right, meta.get("dtype_right"))
        item.a, item.b = (right, left) if direction == "BtoA" else (left, right)
        item.rgb_a = item.rgb_b = rgb
    return items


def _ab_folder(spec) -> Loaded:
    folder, direction = Path(spec.source), spec.config.direction
    report = PairingReport(source=f"AB folder {folder} ({direction})")
    loaded = Loaded(spec, report, [], {"kind": "ab", "dir": str(folder), "direction": direction})
    files = _list_images(folder, report, "AB")
    if files:
        loaded.items = _ab_items(list(files.values()), direction)
    return loaded


def _ab_file(spec) -> Loaded:
    path, direction = spec.source, spec.config.direction
    report = PairingReport(source=f"AB file {path} ({direction})")
    return Loaded(spec, report, _ab_items([Path(path)], direction),
                  {"kind": "ab_file", "path": str(path), "direction": direction})


# ----------------------------------------------------------------------------- channels
def detect_channel_axis(shape, max_channels: int = MAX_DETECTED_CHANNELS) -> int | None:
    """The channel axis of a C,Y,X / Y,X,C (or Z,Y,X,C / C,Z,Y,X) array: the first or last axis
    when exactly one of them has at most ``max_channels`` entries; None when that is ambiguous."""
    if len(shape) < 3:
        return None
    first, last = shape[0] <= max_channels, shape[-1] <= max_channels
    if first == last:
        return None
    return 0 if first else len(shape) - 1


def _channels(spec, notes: list) -> Loaded:
    config, image, path = spec.config, spec.source, None
    if isinstance(image, (str, Path)):
        from ..io import read_image

        path, image = image, read_image(image)
    name = spec.names if spec.names is not None else (Path(path).stem if path is not None else "image")
    arr = np.asarray(image)
    axis = spec.channel_axis
    if axis is None:
        axis = detect_channel_axis(arr.shape)
        if axis is None:
            raise DatasetError(f"the channel axis of {path if path is not None else name} (shape {list(arr.shape)}) "
                               "is ambiguous.", "name it with `channel_axis` (0 for C,Y,X; -1 for Y,X,C).",
                               setting="channel_axis")
        notes.append(f"channels on axis {axis} ({arr.shape[axis]} channels)")
    ca = spec.channels_a if spec.channels_a is not None else config.channels_a
    cb = spec.channels_b if spec.channels_b is not None else config.channels_b
    if ca is None or cb is None:
        raise DatasetError("splitting one image into A and B needs the channels of each side.",
                           "pass channels_a and channels_b (e.g. (0,) and (1,)).")
    ca, cb = [int(c) for c in np.atleast_1d(ca)], [int(c) for c in np.atleast_1d(cb)]
    if arr.ndim < 3:
        raise DatasetError(f"the image has shape {list(arr.shape)}: no channel axis to split.",
                           "pass a multichannel image [Y, X, C] (or name the channel axis).")
    moved = np.moveaxis(arr, axis, -1)
    n = moved.shape[-1]
    bad = [c for c in ca + cb if not -n <= c < n]
    if bad:
        raise DatasetError(f"channel(s) {bad} do not exist; the image has {n} channels (0..{n - 1}).",
                           f"choose channels between 0 and {n - 1}.")
    a = moved[..., ca[0]] if len(ca) == 1 else moved[..., ca]
    b = moved[..., cb[0]] if len(cb) == 1 else moved[..., cb]
    loaded = _arrays(spec, [a], [b], report_source=f"channels {ca} -> {cb} of {name}")
    loaded.items[0].name = name
    loaded.hints_a, loaded.hints_b = [name], [name]
    loaded.source = {"kind": "channels", "channels_a": ca, "channels_b": cb, "channel_axis": axis,
                     "shape": list(arr.shape), "dtype": moved.dtype.name}
    if path is not None:
        loaded.source["path"] = str(path)
    for item in loaded.items:
        item.rgb_a, item.rgb_b = len(ca) > 1, len(cb) > 1
    return loaded


_LOADERS = {"arrays": _arrays, "files": _files, "folders": _folders, "ab": _ab_folder, "ab_file": _ab_file}
