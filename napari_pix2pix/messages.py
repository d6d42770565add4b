"""One set of messages, in each face's words.

The engine raises :class:`~napari_pix2pix.errors.Pix2PixError` (``problem``, ``fix``,
``setting``) and names settings by their schema name, written between backticks in the text
(`` `tile` ``) or passed as ``setting=``. Each face renders an error with :func:`render`:

==========  =======================================  ======================
face        a setting reads as                       example
==========  =======================================  ======================
``cli``     its flag                                 ``--tile``
``napari``  its widget label, in quotes              ``'tile size'``
``nodes``   its node input name, in quotes           ``'tile'``
==========  =======================================  ======================

Older engine texts that still name a setting by its CLI flag (``--tile 256``) are put in the
napari and nodes faces' words too. Every message reads ``Problem. Fix: ...`` (a full stop before ``Fix:``). A multi-line
problem (a pairing report) is folded into one line, shortened past 5 items.

>>> from napari_pix2pix.errors import ConfigError
>>> err = ConfigError("`tile`=9 is too small", "pass `tile` 0 or at least 64", setting="tile")
>>> render(err, "cli")
'--tile=9 is too small. Fix: pass --tile 0 or at least 64.'
>>> render(err, "nodes")
"'tile'=9 is too small. Fix: pass 'tile' 0 or at least 64."
"""

from __future__ import annotations

import re
from functools import lru_cache

from .schema import FACES, Option, options_of

MAX_LINES = 5

#: settings that are not configuration fields but appear in messages, per face
EXTRA_WORDS: dict[str, dict[str, str]] = {
    "channel_axis": {"cli": "--channel-axis", "napari": "'channel axis'", "nodes": "'channel_axis'"},
    "preset": {"cli": "--preset", "napari": "'preset'", "nodes": "'preset'"},
    "out": {"cli": "--out", "napari": "'model file'", "nodes": "'name'"},
    "resume": {"cli": "--resume", "napari": "'resume from'", "nodes": "'model'"},
}


@lru_cache(maxsize=1)
def schema_options() -> dict[str, Option]:
    """Every option of every configuration class, by schema name (first declaration wins)."""
    from . import config

    out: dict[str, Option] = {}
    for cls in (config.ModelConfig, config.AugmentConfig, config.NormConfig, config.DataConfig,
                config.TrainConfig, config.TileConfig):
        for opt in options_of(cls):
            out.setdefault(opt.name, opt)
    return out


def setting_words(name: str, face: str) -> str:
    """How ``face`` names the setting ``name``: CLI flag, quoted widget label or node input."""
    if face not in FACES:
        raise ValueError(f"unknown face {face!r}; one of {FACES}")
    if name in EXTRA_WORDS:
        return EXTRA_WORDS[name][face]
    opt = schema_options().get(name)
    if face == "cli":
        return opt.cli_flag() if opt is not None else "--" + name.replace("_", "-")
    if face == "napari":
        return f"'{opt.display_label() if opt is not None else name.replace('_', ' ')}'"
    return f"'{name}'"


_MARKER = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@lru_cache(maxsize=1)
def _flag_names() -> dict[str, str]:
    """CLI flag -> schema name, for the older engine texts that still name a setting by its flag."""
    out = {words["cli"]: name for name, words in EXTRA_WORDS.items()}
    for name, opt in schema_options().items():
        out.setdefault(opt.cli_flag(), name)
    return out


def in_words(text: str, face: str) -> str:
    """``text`` with every `` `name` `` of a known setting in ``face``'s words (and, for the
    napari and nodes faces, every CLI flag of a known setting too)."""
    known = schema_options()

    def repl(m):
        name = m.group(1)
        return setting_words(name, face) if (name in known or name in EXTRA_WORDS) else m.group(0)

    text = _MARKER.sub(repl, text or "")
    if face != "cli":
        flags = _flag_names()
        text = _FLAG.sub(lambda m: setting_words(flags[m.group(0)], face) if m.group(0) in flags else m.group(0),
                         text)
    return text


def _sentence(text: str) -> str:
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _fold(problem: str, face: str) -> str:
    lines = [ln.strip(" -\t") for ln in (problem or "").strip().splitlines() if ln.strip(" -\t")] or [""]
    shown = lines[:MAX_LINES]
    if len(lines) > MAX_LINES:
        more = {"cli": "run `pair` with the same source options for all",
                "napari": "see the pairing report for all", "nodes": "see the node's report for all"}[face]
        shown.append(f"... {len(lines) - MAX_LINES} more ({more})")
    return "; ".join(shown)


def render(error, face: str) -> str:
    """One line ``Problem. Fix: ...`` for ``error`` (a :class:`Pix2PixError`, or any exception:
    its text) in ``face``'s words (``cli``, ``napari`` or ``nodes``)."""
    problem = getattr(error, "problem", None)
    fix = getattr(error, "fix", None)
    if problem is None:
        problem = str(error) or type(error).__name__
    text = _sentence(in_words(_fold(problem, face), face))
    if fix:
        text = f"{text} Fix: {_sentence(in_words(fix, face))}"
    return text
