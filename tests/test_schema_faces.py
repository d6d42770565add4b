"""One schema, three faces: every option a face exposes has the schema's name, default, choices
and range, and every option the schema shows on a face is there. Drift fails here.

Each face is read into the same shape, ``{name: Exposed(default, choices, range)}``, by a small
reader (:func:`cli_options` walks the argparse parser); :func:`compare_with_schema` does the
rest, so the napari and nodes faces plug in with a reader each (see the hooks at the end).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import pytest

from napari_pix2pix import config
from napari_pix2pix.schema import accepts, options_of

CLASSES = (config.ModelConfig, config.AugmentConfig, config.NormConfig, config.DataConfig, config.TrainConfig,
           config.TileConfig)
UNSET = object()


@dataclass
class Exposed:
    """What a face shows for one option. ``choices``: the list offered (None: free entry);
    ``range``: ``(low, high)`` it accepts (None: not a number, or not known to the face)."""

    default: object = UNSET
    choices: tuple | None = None
    range: tuple | None = None


def schema_for(classes, face: str) -> dict:
    out = {}
    for cls in classes:
        for opt in options_of(cls, face):
            out.setdefault(opt.name, opt)
    return out


def compare_with_schema(exposed: dict[str, Exposed], classes, face: str, *, complete: bool = True,
                        renamed: dict[str, str] | None = None) -> list[str]:
    """Differences between what a face exposes and the schema (empty: no drift). ``renamed``:
    face name -> schema name where the face keeps an older name. ``complete``: every option the
    schema shows on ``face`` must be exposed."""
    renamed = renamed or {}
    schema = schema_for(classes, face)
    everything = {o.name: o for cls in classes for o in options_of(cls)}
    problems = []
    for face_name, got in exposed.items():
        name = renamed.get(face_name, face_name)
        opt = schema.get(name) or everything.get(name)
        if opt is None:
            continue  # not a schema option (a file path, --json, ...)
        if face not in opt.faces:
            problems.append(f"{name}: shown on {face} but the schema does not list that face")
        if got.default is not UNSET and got.default != opt.default:
            problems.append(f"{name}: default {got.default!r} != schema {opt.default!r}")
        if got.choices is not None:
            want = tuple(opt.choices or ())
            if tuple(c for c in got.choices if c in want) != want:
                problems.append(f"{name}: choices {got.choices} do not offer the schema's {want} in order")
            extra = [c for c in got.choices if c not in want and not accepts(opt, c)]
            if extra:
                problems.append(f"{name}: offers {extra}, which the schema refuses")
        if got.range is not None and opt.range is not None and tuple(got.range) != tuple(opt.range):
            problems.append(f"{name}: range {got.range} != schema {opt.range}")
    if complete:
        shown = {renamed.get(n, n) for n in exposed}
        problems += [f"{name}: in the schema for {face} but not exposed" for name in schema if name not in shown]
    return problems


# ---------------------------------------------------------------------------------- CLI face
def _probe_range(action, kind, hints=()) -> tuple | None:
    """The inclusive range an argparse ``type`` accepts, found by asking it (the schema's bounds
    are only used as places to probe): the smallest and largest values it takes, each with its
    neighbour outside refused (None for an open side)."""
    def ok(v):
        try:
            action.type(str(v))
            return True
        except (argparse.ArgumentTypeError, ValueError):
            return False

    candidates = {0, 1, 1e-9, 0.5, 1.0, 2.0, 100, 10_000, 1_000_000, 2**62}
    candidates |= {h for h in hints if h is not None}
    if kind is int:
        candidates = {int(c) for c in candidates if float(c).is_integer()}
    accepted = sorted(c for c in candidates if ok(c))
    if not accepted:
        return None
    below = accepted[0] - 1 if kind is int else accepted[0] * (1 - 1e-6) - 1e-12
    above = accepted[-1] + 1 if kind is int else accepted[-1] * (1 + 1e-6) + 1e-12
    return (accepted[0] if not ok(below) else None, accepted[-1] if not ok(above) else None)


def _schema_range(name: str, classes) -> tuple:
    for cls in classes:
        for opt in options_of(cls):
            if opt.name == name and opt.range is not None:
                return tuple(opt.range)
    return ()


def cli_options(subcommand: str) -> dict[str, Exposed]:
    classes = CLI_SUBCOMMANDS.get(subcommand, CLASSES)
    from napari_pix2pix.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[subcommand]
    out = {}
    for action in sub._actions:
        name = getattr(action, "schema_name", None)
        if name is None or not action.option_strings:
            continue
        got = Exposed(default=action.default)
        if action.choices is not None:
            got.choices = tuple(action.choices)
        kind = getattr(action.type, "__name__", None)
        if kind in ("int", "float"):
            hints = _schema_range(name, classes)
            got.range = _probe_range(action, int if kind == "int" else float, hints)
        out[name] = got
    return out


CLI_SUBCOMMANDS = {
    "pair": (config.DataConfig,),
    "train": (config.DataConfig, config.ModelConfig, config.TrainConfig, config.AugmentConfig),
    "translate": (config.TileConfig,),
    "evaluate": (config.TileConfig,),
}


@pytest.mark.parametrize("subcommand", sorted(CLI_SUBCOMMANDS))
def test_cli_options_match_the_schema(subcommand):
    exposed = cli_options(subcommand)
    assert exposed, subcommand
    complete = subcommand != "evaluate"  # evaluate writes metrics, not images: no --output-dtype
    problems = compare_with_schema(exposed, CLI_SUBCOMMANDS[subcommand], "cli", complete=complete)
    assert not problems, "\n".join(problems)


def test_cli_help_shows_help_and_default_for_every_option():
    from napari_pix2pix.cli import build_parser

    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            if action.option_strings and not action.required:
                assert "default" in sub._get_formatter()._expand_help(action) or "default" in action.help, \
                    f"{name} {action.option_strings}: shows no default"
        assert "--" in text


def test_cli_defaults_are_the_engines():
    """The CLI's --validate-every (100 once, 0 in TrainConfig) and tile limit agree with the engine."""
    exposed = cli_options("train")
    assert exposed["validate_every"].default == config.TrainConfig().validate_every
    assert cli_options("translate")["tile"].range == tuple(config.TileConfig.__dataclass_fields__["tile"]
                                                           .metadata["option"].range)


def test_range_probe_finds_known_bounds():
    exposed = cli_options("train")
    assert exposed["discriminator_layers"].range == (1, 5)
    assert exposed["validation_fraction"].range == (0, 0.95)
    assert math.isclose(exposed["lr"].range[0], 1e-9)


# ------------------------------------------------------------------------ napari / nodes faces
def _node_exposed(entry) -> Exposed:
    kind, extra = entry[0], (entry[1] if len(entry) > 1 else {})
    got = Exposed(default=extra.get("default", UNSET))
    if isinstance(kind, (list, tuple)):
        got.choices = tuple(kind)
    if kind in ("INT", "FLOAT") and "min" in extra:
        got.range = (extra["min"], extra["max"])
        if got.default == -1:  # UNSET stands for None in ComfyUI widgets
            got.default, got.range = None, None
    return got


def nodes_options() -> dict[tuple[str, type], tuple[dict[str, Exposed], dict[str, str]]]:
    """Per node and configuration class behind it (the node's ``SCHEMA``): its inputs read as
    ``{input name: Exposed}``, and input name -> schema name where the node keeps an older name.
    Inputs with no setting behind them (file names, colormaps) are not read."""
    import sys

    from test_nodes import PACK, load_pack

    name = "custom_nodes.napari_pix2pix_nodes"  # as ComfyUI loads it, never as top-level `nodes`
    pack = sys.modules.get(name) or load_pack(name, search=[str(PACK)])
    out = {}
    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        inputs = {**spec.get("required", {}), **spec.get("optional", {})}
        for i, (config_cls, rename) in enumerate(getattr(cls, "SCHEMA", ())):
            names = {rename.get(o.name, o.name): o.name for o in options_of(config_cls, "nodes")}
            exposed = {n: _node_exposed(inputs[n]) for n in names if n in inputs}
            out[(f"{key}[{i}]", config_cls)] = (exposed, {n: s for n, s in names.items() if n != s})
    return out


def test_nodes_options_match_the_schema():
    problems, shown = [], set()
    for (node, cls), (exposed, renamed) in nodes_options().items():
        found = compare_with_schema(exposed, (cls,), "nodes", complete=False, renamed=renamed)
        # ComfyUI's INT widgets stop at 2**53 - 1 (exact in JavaScript): a wider range is clipped
        problems += [f"{node} {p}" for p in found if "range" not in p or "9007199254740991" not in p]
        shown |= {(cls, renamed.get(n, n)) for n in exposed}
    assert not problems, "\n".join(problems)
    # completeness: the pairing options a node does not show yet are listed in test_nodes_schema.py
    from test_nodes_schema import NOT_SHOWN

    missing = [f"{cls.__name__}.{o.name}" for cls in CLASSES for o in options_of(cls, "nodes")
               if (cls, o.name) not in shown and (cls, o.name) not in NOT_SHOWN]
    assert not missing, missing


# The napari face is walked by tests/test_napari_ux.py::test_napari_docks_match_the_schema (it
# needs a viewer): every option widget of the four docks against compare_with_schema above.


def test_drift_is_reported():
    """The comparator itself: a wrong default, a missing choice, a wrong range and a missing option."""
    exposed = cli_options("translate")
    exposed["tile"] = Exposed(default=256, range=(0, 8192))
    exposed["mode"] = Exposed(default="eval", choices=("eval",))
    del exposed["overlap"]
    problems = "\n".join(compare_with_schema(exposed, (config.TileConfig,), "cli"))
    for needle in ("tile: default 256", "tile: range (0, 8192)", "mode: choices", "overlap: in the schema"):
        assert needle in problems, problems
