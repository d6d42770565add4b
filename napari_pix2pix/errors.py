"""Errors of our own: every message names the problem and, on a second sentence, the fix.

Faces (CLI, napari widgets, graph nodes) catch :class:`Pix2PixError` and show its message
as is; anything else reaching a user is a bug.
"""

from __future__ import annotations


class Pix2PixError(Exception):
    """Base class. ``problem`` says what is wrong, ``fix`` what to do about it. ``setting``: the
    schema name of the option at fault (``tile``, ``device``), when one is; the faces render it in
    their own words (see :mod:`napari_pix2pix.messages`)."""

    def __init__(self, problem: str, fix: str | None = None, *, setting: str | None = None):
        self.problem = problem
        self.fix = fix
        self.setting = setting
        text = problem.rstrip()
        if fix:
            text = f"{text} Fix: {fix.rstrip()}"
        super().__init__(text)


class InputError(Pix2PixError, ValueError):
    """An image or array that cannot be used (shape, dtype, channels, NaN, size)."""


class DatasetError(Pix2PixError, ValueError):
    """A paired source that cannot be used; ``report`` lists every mismatch."""

    def __init__(self, problem: str, fix: str | None = None, report=None, *, setting: str | None = None):
        self.report = report
        super().__init__(problem, fix, setting=setting)


class ImageReadError(InputError):
    """A file that is not a readable image (corrupt, truncated, wrong extension)."""


class ModelFileError(Pix2PixError, ValueError):
    """A model file that is not ours, is damaged, or does not fit the requested architecture."""


class ConfigError(Pix2PixError, ValueError):
    """An option value that is out of range or inconsistent with another."""


class TrainingError(Pix2PixError, RuntimeError):
    """Training had to stop (non-finite loss, out of memory); the last good state is kept."""


class Cancelled(Pix2PixError):
    """The user asked to stop."""
