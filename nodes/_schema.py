"""ComfyUI ``INPUT_TYPES`` entries generated from the engine's one schema.

A node lists which configuration fields it shows (and, where a node input keeps an older name,
the name it uses); the type, default, choices, range and tooltip all come from
:func:`napari_pix2pix.schema.options_of` (``face="nodes"``). Nothing here holds a choice list,
a range or a default of its own.

* ``bool`` -> ``BOOLEAN``; choices -> a combo (``device`` also lists ``cuda:N`` for each GPU
  torch sees); ``int`` -> ``INT``; ``float`` -> ``FLOAT``; other -> ``STRING``.
* An option whose default is ``None`` (``decay_steps``, ``TileConfig.seed``) is an ``INT`` whose
  value :data:`UNSET` (-1) stands for None, as ComfyUI widgets have no empty state.
* ``basic`` options go to ``required``, ``advanced`` ones to ``optional`` (flagged ``advanced``).
"""

from __future__ import annotations

import math
import re
import typing

from napari_pix2pix.schema import options_of

FACE = "nodes"
UNSET = -1
#: ComfyUI's INT widget limits (a JavaScript number keeps integers exact up to 2**53)
INT_LIMIT = 2**53 - 1


def _kind(opt) -> type:
    """bool, int, float or str from the field's annotation (a string under postponed annotations)."""
    text = opt.type if isinstance(opt.type, str) else getattr(opt.type, "__name__", str(opt.type))
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if re.search(rf"\b{name}\b", text):
            return kind
    if isinstance(opt.default, (bool, int, float)):
        return type(opt.default)
    return str


def _pattern_values(opt) -> list[str]:
    """Values of a pattern that ComfyUI can offer in a list: ``cuda:N`` for every visible GPU."""
    if not opt.pattern or not re.fullmatch(opt.pattern, "cuda:0"):
        return []
    try:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA set-up only hides the cuda:N entries
        count = 0
    return [f"cuda:{i}" for i in range(count) if re.fullmatch(opt.pattern, f"cuda:{i}")]


def _float_step(opt) -> float:
    """A widget step of about a tenth of the default's order of magnitude (or of the range)."""
    ref = abs(float(opt.default or 0.0))
    if ref == 0 and opt.range and None not in opt.range:
        ref = (float(opt.range[1]) - float(opt.range[0])) / 10
    if ref <= 0 or not math.isfinite(ref):
        return 0.01
    return 10.0 ** (math.floor(math.log10(ref)) - 1)


def tooltip(opt) -> str:
    text = opt.help[:1].upper() + opt.help[1:] if opt.help else opt.name
    if opt.unit:
        text += f" ({opt.unit})"
    if opt.default is None and _kind(opt) is int:
        text += f"; {UNSET}: {'unset' if opt.name != 'seed' else 'unseeded'}"
    return text if text.endswith(".") else text + "."


def entry(opt) -> tuple:
    """The ComfyUI input entry of one schema option."""
    kind = _kind(opt)
    extra = {"tooltip": tooltip(opt)}
    if opt.level == "advanced":
        extra["advanced"] = True
    if kind is bool:
        return ("BOOLEAN", {"default": bool(opt.default), **extra})
    if opt.choices is not None:
        choices = list(opt.choices) + [v for v in _pattern_values(opt) if v not in opt.choices]
        return (choices, {"default": opt.default, **extra})
    low, high = opt.range if opt.range is not None else (None, None)
    if kind is int:
        low = -INT_LIMIT if low is None else int(low)
        high = INT_LIMIT if high is None else min(int(high), INT_LIMIT)
        if opt.default is None:
            low, default = UNSET, UNSET
        else:
            default = int(opt.default)
        return ("INT", {"default": default, "min": low, "max": high, **extra})
    if kind is float:
        return ("FLOAT", {"default": float(opt.default), "min": -1e308 if low is None else float(low),
                          "max": 1e308 if high is None else float(high), "step": _float_step(opt),
                          "round": False, **extra})
    return ("STRING", {"default": "" if opt.default is None else str(opt.default), **extra})


def inputs(cls, fields: typing.Iterable[str] | None = None, *, rename: dict[str, str] | None = None,
           section: str | None = None) -> dict[str, dict[str, tuple]]:
    """``{"required": {...}, "optional": {...}}`` for the ``nodes`` options of ``cls``.

    ``fields``: which of them, in this order (default: all, in declaration order). ``rename``:
    field name -> node input name. ``section``: put them all in ``required`` or ``optional``
    instead of following each option's level.
    """
    by_name = {o.name: o for o in options_of(cls, FACE)}
    names = list(by_name) if fields is None else list(fields)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"{cls.__name__} has no nodes option {missing}")
    out: dict[str, dict[str, tuple]] = {"required": {}, "optional": {}}
    for name in names:
        opt = by_name[name]
        where = section or ("required" if opt.level == "basic" else "optional")
        out[where][(rename or {}).get(name, name)] = entry(opt)
    return out


def merge(*parts: dict) -> dict:
    """Merge ``{"required": ..., "optional": ..., "hidden": ...}`` dicts, in order."""
    out: dict[str, dict] = {}
    for part in parts:
        for section, items in part.items():
            out.setdefault(section, {}).update(items)
    out.setdefault("required", {})
    return {k: v for k, v in out.items() if v or k == "required"}


def values(cls, given: dict, fields: typing.Iterable[str] | None = None, *,
           rename: dict[str, str] | None = None) -> dict:
    """Keyword arguments for ``cls`` from node inputs: the schema default where an input is
    absent, ``None`` where an unset-able INT holds :data:`UNSET`, numbers as the field's type."""
    by_name = {o.name: o for o in options_of(cls, FACE)}
    out = {}
    for name in (list(by_name) if fields is None else list(fields)):
        opt = by_name[name]
        key = (rename or {}).get(name, name)
        if key not in given or given[key] is None:
            out[name] = opt.default
            continue
        value = given[key]
        kind = _kind(opt)
        if opt.default is None and kind is int and int(value) < 0:
            value = None
        elif kind is bool:
            value = bool(value)
        elif kind is int and isinstance(value, (int, float)) and float(value).is_integer():
            value = int(value)
        elif kind is float and isinstance(value, (int, float)):
            value = float(value)
        out[name] = value
    return out


def default(cls, name: str):
    """The schema default of one field (for node code that needs it outside an input)."""
    for opt in options_of(cls, None):
        if opt.name == name:
            return opt.default
    raise KeyError(name)
