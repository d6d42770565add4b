"""The one schema of options: per-field metadata on the configuration dataclasses.

Every user-facing option is a dataclass field declared with :func:`option`, which stores an
:class:`Option` (help, choices or range, level, faces) in the field's metadata. The faces read
nothing else: the CLI's argparse, the magicgui widgets and the ComfyUI ``INPUT_TYPES`` are built
from :func:`options_of`, and :func:`check` validates any instance against the same metadata.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     steps: int = option(100, help="number of iterations", range=(1, None))
>>> [o.name for o in options_of(Demo)]
['steps']
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

FACES = ("cli", "napari", "nodes")
LEVELS = ("basic", "advanced")


@dataclass(frozen=True)
class Option:
    """What a face needs to show one setting.

    ``choices``: the values offered (a face shows them as a list). ``pattern``: a regular
    expression for further accepted values that a list can't hold (``cuda:N``, ``unet_N``);
    ``pattern_hint`` says the same in words for messages (``cuda:N``).
    ``range``: inclusive ``(low, high)`` bounds for numbers, either side ``None`` for open.
    ``level``: ``basic`` (always visible) or ``advanced`` (a collapsed section / an advanced flag).
    ``faces``: which faces expose it. ``label``: a human label (widgets); ``flag``: the CLI flag
    when it differs from ``--field-name``. ``unit``: shown after the value (px, s, steps).
    """

    help: str
    choices: tuple | None = None
    pattern: str | None = None
    range: tuple[float | None, float | None] | None = None
    level: str = "basic"
    faces: tuple[str, ...] = FACES
    label: str | None = None
    flag: str | None = None
    unit: str | None = None
    pattern_hint: str | None = None
    # filled in by options_of
    name: str = ""
    default: Any = None
    type: Any = None

    def display_label(self) -> str:
        return self.label or self.name.replace("_", " ")

    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def option(default: Any = dataclasses.MISSING, *, help: str, choices=None, pattern: str | None = None,
           range=None, level: str = "basic", faces=FACES, label: str | None = None, flag: str | None = None,
           unit: str | None = None, pattern_hint: str | None = None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field carrying an :class:`Option`. Use instead of a bare default."""
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {LEVELS}")
    unknown = set(faces) - set(FACES)
    if unknown:
        raise ValueError(f"unknown faces {sorted(unknown)}")
    meta = Option(help=help, choices=tuple(choices) if choices is not None else None, pattern=pattern,
                  range=tuple(range) if range is not None else None, level=level, faces=tuple(faces),
                  label=label, flag=flag, unit=unit, pattern_hint=pattern_hint)
    return field(default=default, default_factory=default_factory, metadata={"option": meta})


def options_of(cls_or_instance, face: str | None = None) -> list[Option]:
    """The options of a configuration class, in declaration order, with name, default and type
    filled in. ``face``: only those that face shows."""
    cls = cls_or_instance if isinstance(cls_or_instance, type) else type(cls_or_instance)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        opt = dataclasses.replace(meta, name=f.name, default=default, type=f.type)
        if face is None or face in opt.faces:
            out.append(opt)
    return out


def get_option(cls_or_instance, name: str) -> Option:
    for opt in options_of(cls_or_instance):
        if opt.name == name:
            return opt
    raise KeyError(name)


def accepts(opt: Option, value: Any) -> bool:
    """Whether ``value`` is one of the choices or matches the pattern (always True without either)."""
    if opt.choices is None and opt.pattern is None:
        return True
    if opt.choices is not None and value in opt.choices:
        return True
    return bool(opt.pattern and isinstance(value, str) and re.fullmatch(opt.pattern, value))


def check_value(opt: Option, value: Any, owner: str = "") -> None:
    """Raise :class:`ConfigError` naming the setting by its schema name (`` `name` ``, which
    :func:`napari_pix2pix.messages.render` puts in each face's words; ``setting=name``) when
    ``value`` is outside the option's choices, pattern or range, or is a non-finite float."""
    if value is None:
        return
    if not accepts(opt, value):
        shown = ", ".join(map(str, opt.choices or ()))
        if opt.pattern:
            hint = opt.pattern_hint or f"a value matching {opt.pattern}"
            shown = f"{shown} or {hint}" if shown else hint
        raise ConfigError(f"`{opt.name}`={value!r} is not one of {shown}.", f"choose `{opt.name}` from: {shown}.",
                          setting=opt.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"`{opt.name}`={value!r} is not a finite number.", f"pass a finite `{opt.name}`.",
                          setting=opt.name)
    if opt.range is not None:
        low, high = opt.range
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{'-inf' if low is None else low}..{'inf' if high is None else high}"
            raise ConfigError(f"`{opt.name}`={value!r} is outside {span}.", f"pass `{opt.name}` within {span}.",
                              setting=opt.name)


def check(instance) -> None:
    """Validate every option field of a configuration instance against its schema."""
    for opt in options_of(instance):
        check_value(opt, getattr(instance, opt.name))
