"""The data path in one pass: ``PairSpec -> load -> validate -> build_dataset``.

:func:`pair` is the one engine service every face calls to turn what the user named into a
:class:`~.sources.PairedDataset` (the CLI's ``pair``/``train``/``evaluate``, the napari Pair
dock, the nodes, through the ``from_*`` shortcuts or directly). Each stage runs exactly once:

==================  ===========================  ==================================================
stage               module                       job
==================  ===========================  ==================================================
spec                :mod:`.spec`                 what the user named; resolves paths, reads nothing
load                :mod:`.load`                 lists, reads, splits AB images, picks channels
validate            :mod:`.validate`             every mismatch into one report; raises if not ok
build_dataset       :mod:`.sources`              labels, normalisation, 2-D pairs, source record
==================  ===========================  ==================================================

The colorize task (RGB images -> L/ab pairs) has its own builder in :mod:`napari_pix2pix.tasks`;
a ``colorize`` spec is handed to it.
"""

from __future__ import annotations

from .load import load
from .sources import build_dataset
from .spec import PairSpec
from .validate import validate

__all__ = ["PairSpec", "build_dataset", "load", "pair", "validate"]


def pair(spec: PairSpec, say=None):
    """The :class:`~.sources.PairedDataset` of ``spec``. ``say(text)``: notes for the user (e.g. a
    detected channel axis). Raises :class:`~napari_pix2pix.errors.DatasetError` (with the
    pairing report) when the source cannot be used."""
    if spec.kind == "colorize":
        return _colorize(spec)
    notes: list = []
    try:
        loaded = load(spec, notes)
    finally:  # a note (e.g. the detected channel axis) is said even when reading then fails
        for note in notes if say is not None else ():
            say(note)
    return build_dataset(validate(loaded))


def _colorize(spec):
    from .. import tasks

    if isinstance(spec.source, (str, bytes)) or hasattr(spec.source, "__fspath__"):
        return tasks.colorize_from_paths(spec.source, spec.config, device=spec.device)
    return tasks.colorize_dataset(spec.source, spec.config, names=spec.names, device=spec.device)
