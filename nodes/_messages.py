"""Engine errors in the nodes' words.

The engine names a setting by its schema name (and some older messages still use the CLI's
``--flag`` or napari's "layers"). A node shows ComfyUI users node input names instead, and
every message reads "Problem. Fix: ...". :func:`node_errors` wraps a node's FUNCTION so that
any :class:`~napari_pix2pix.errors.Pix2PixError` leaving it is rewritten in place (its class,
``report`` and ``setting`` are kept).

When the engine's ``napari_pix2pix.messages.render(error, face)`` exists it is used first and
the node-specific words below are applied on top of its text.
"""

from __future__ import annotations

import functools
import re

from napari_pix2pix.errors import Pix2PixError
from napari_pix2pix.schema import options_of

#: phrases of other faces -> the nodes' words (all nodes)
_PHRASES = (
    ("choose other layers/channels", "connect a dataset whose channels fit the model"),
    ("(see `pair`)", "(with Pair Images or Pair Folders)"),
    ("in napari", "in ComfyUI"),
)
#: extra phrases per node class name: Pair Images pairs frames of two batches, not files
_NODE_PHRASES = {
    "Pix2PixPairImages": (
        ("with the same name (any image extension)", "at the same batch index"),
        ("both files of a pair", "both frames of a pair"),
        ("unreadable files", "unreadable frames"),
        ("unpaired files", "unpaired frames"),
        ("the files listed", "the frames listed"),
    ),
}


def _flag_names() -> dict[str, str]:
    """CLI flag -> schema name, for every option of every configuration class."""
    from napari_pix2pix import config

    out = {}
    for cls in (config.ModelConfig, config.AugmentConfig, config.NormConfig, config.DataConfig,
                config.TrainConfig, config.TileConfig):
        for opt in options_of(cls):
            out.setdefault(opt.cli_flag(), opt.name)
    return out


def _sentence(text: str) -> str:
    text = (text or "").strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text


def words(text: str, node: str | None = None, rename: dict[str, str] | None = None) -> str:
    """``text`` with CLI flags as node input names (``'tile' = 256`` for ``--tile 256``) and the
    other faces' phrases replaced."""
    if not text:
        return text
    rename = rename or {}
    flags = _flag_names()

    def flag(match: re.Match) -> str:
        name = flags.get(match.group(1), match.group(1)[2:].replace("-", "_"))
        name = rename.get(name, name)
        value = match.group(2)
        return f"'{name}' = {value}" if value else f"'{name}'"

    text = re.sub(r"(?<![\w`])(--[a-z][a-z0-9-]*)(?: (?!or\b|and\b)([\w.:/]+(?![\w(])))?", flag, text)
    for old, new in _PHRASES + _NODE_PHRASES.get(node or "", ()):
        text = text.replace(old, new)
    return text


def render(exc: Pix2PixError, node: str | None = None, rename: dict[str, str] | None = None) -> Pix2PixError:
    """Rewrite ``exc``'s problem and fix in the nodes' words ("Problem. Fix: ..."); returns it."""
    problem, fix = exc.problem, exc.fix
    try:  # the engine's renderer, when there is one
        from napari_pix2pix.messages import render as engine_render  # type: ignore[attr-defined]

        text = engine_render(exc, "nodes")
        if isinstance(text, str) and text:
            head, sep, tail = text.partition(" Fix: ")
            problem, fix = head, (tail if sep else fix)
    except ImportError:
        pass
    if getattr(exc, "setting", None) and rename and exc.setting in rename:
        problem = re.sub(rf"\b{re.escape(exc.setting)}\b", rename[exc.setting], problem)
        fix = re.sub(rf"\b{re.escape(exc.setting)}\b", rename[exc.setting], fix or "") or None
    exc.problem = _sentence(words(problem, node, rename))
    exc.fix = _sentence(words(fix, node, rename)) if fix else None
    exc.args = (f"{exc.problem} Fix: {exc.fix}" if exc.fix else exc.problem,)
    return exc


def node_errors(node: str, rename: dict[str, str] | None = None):
    """Decorator for a node's FUNCTION: engine errors leave it in the nodes' words."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Pix2PixError as exc:
                render(exc, node, rename)
                raise
        return run
    return wrap
