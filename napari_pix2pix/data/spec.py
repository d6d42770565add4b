"""Stage 0 of the data path: the :class:`PairSpec`, what the user named.

A spec says where the pairs come from (two arrays or lists of arrays, two files, two folders,
a folder of side-by-side AB images, one AB file, channels of one image, or RGB images for the
colorize task) and how to read them: the channels of each side, the channel axis, and the
:class:`~napari_pix2pix.config.DataConfig` (normalisation, label flags, direction, task).
Nothing is read here; :func:`~.pipeline.pair` runs ``load -> validate -> build_dataset`` on it.

Every face turns its inputs into a spec (the CLI's flags, the napari Pair dock's choices, the
nodes' inputs) and calls :func:`~.pipeline.pair` once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import DatasetError

KINDS = ("arrays", "files", "folders", "ab", "ab_file", "channels", "colorize")


@dataclass
class PairSpec:
    """``kind``: one of :data:`KINDS`. ``source``/``target``: the A and B arrays (``arrays``), file
    paths (``files``), folder paths (``folders``); the folder (``ab``) or file (``ab_file``) of AB
    images; the image, an array or a path (``channels``); a path or RGB arrays (``colorize``).
    ``names``: a base name or one per array (arrays, channels, colorize). ``rgb_a``/``rgb_b``: the
    layout of array sides (None: the auto rule). ``channels_a``/``channels_b``: the channels of
    each side (channels; default ``config.channels_a/b``). ``channel_axis``: where the channels
    are (channels; two files, to move it last), None to detect it (channels of a file).
    ``device``: where colorize computes Lab."""

    kind: str
    source: Any = None
    target: Any = None
    config: DataConfig = field(default_factory=DataConfig)
    names: Any = None
    rgb_a: bool | None = None
    rgb_b: bool | None = None
    channels_a: Any = None
    channels_b: Any = None
    channel_axis: int | None = -1
    device: Any = "cpu"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"PairSpec kind {self.kind!r} is not one of {KINDS}")
        self.config = self.config or DataConfig()

    @property
    def task(self) -> str:
        return "colorize" if self.kind == "colorize" else getattr(self.config, "task", "translate")

    # ---------------------------------------------------------------------- named sources
    @classmethod
    def arrays(cls, a, b, config=None, *, rgb_a=None, rgb_b=None, names=None) -> "PairSpec":
        return cls("arrays", a, b, config, names=names, rgb_a=rgb_a, rgb_b=rgb_b)

    @classmethod
    def files(cls, file_a, file_b, config=None, *, channel_axis=None) -> "PairSpec":
        return cls("files", Path(file_a), Path(file_b), config, channel_axis=channel_axis)

    @classmethod
    def folders(cls, dir_a, dir_b, config=None) -> "PairSpec":
        return cls("folders", Path(dir_a), Path(dir_b), config)

    @classmethod
    def ab_folder(cls, folder, config=None) -> "PairSpec":
        return cls("ab", Path(folder), None, config)

    @classmethod
    def ab_file(cls, path, config=None) -> "PairSpec":
        return cls("ab_file", path, None, config)

    @classmethod
    def channels(cls, image, channels_a=None, channels_b=None, config=None, *, channel_axis=-1,
                 name=None) -> "PairSpec":
        """``image``: an array, or a path (read by :func:`~.load.load`; ``name`` defaults to its stem)."""
        return cls("channels", image, None, config, names=name, channels_a=channels_a, channels_b=channels_b,
                   channel_axis=channel_axis)

    @classmethod
    def colorize(cls, source, config=None, *, names=None, device="cpu") -> "PairSpec":
        return cls("colorize", source, None, config, names=names, device=device)

    # ------------------------------------------------------------------------ from paths
    @classmethod
    def paths(cls, source, target=None, config=None) -> "PairSpec":
        """The CLI's ``--source A --target B``: file + file, folder + folder; with no target, a
        folder of AB images, one multichannel file split by ``config.channels_a/b``, or one AB file."""
        config = config or DataConfig()
        src = Path(source)
        if not src.exists():
            raise DatasetError(f"source {src} does not exist.", "check the path.")
        if target is None:
            if src.is_dir():
                return cls.ab_folder(src, config)
            if config.channels_a is not None or config.channels_b is not None:
                return cls.channels(src, config=config)
            return cls.ab_file(src, config)
        tgt = Path(target)
        if not tgt.exists():
            raise DatasetError(f"target {tgt} does not exist.", "check the path.")
        if src.is_dir() and tgt.is_dir():
            return cls.folders(src, tgt, config)
        if src.is_file() and tgt.is_file():
            return cls.files(src, tgt, config)
        raise DatasetError(f"source {src} is a {'folder' if src.is_dir() else 'file'} but target {tgt} is a "
                           f"{'folder' if tgt.is_dir() else 'file'}.",
                           "pass two files or two folders (whose files pair up by name).")

    @classmethod
    def from_source(cls, spec, config=None) -> "PairSpec":
        """The spec of a path (as :meth:`paths` with no target), a ``{"source": ..., "target": ...}``
        dict, or a ``PairedDataset.source`` dict of a file-based dataset."""
        config = config or DataConfig()
        if isinstance(spec, (str, Path)):
            return cls.paths(spec, None, config)
        spec = dict(spec or {})
        kind = spec.get("kind")
        if kind is None and "source" in spec:
            return cls.paths(spec["source"], spec.get("target"), config)
        if kind == "folders":
            return cls.folders(spec["a"], spec["b"], config)
        if kind == "files":
            return cls.files(spec["a"], spec["b"], config, channel_axis=spec.get("channel_axis"))
        if kind in ("ab", "ab_file"):
            config = config.replace(direction=spec.get("direction", config.direction))
            return cls.ab_folder(spec["dir"], config) if kind == "ab" else cls.ab_file(spec["path"], config)
        if kind == "channels" and "path" in spec:
            return cls.channels(spec["path"], spec["channels_a"], spec["channels_b"], config,
                                channel_axis=spec.get("channel_axis", -1))
        raise DatasetError(f"cannot rebuild a dataset from source kind {kind!r} (in-memory arrays are not stored).",
                           "pass the files or folders again.")
