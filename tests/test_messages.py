"""One set of messages in each face's words: every engine error class, rendered through the CLI,
napari and nodes faces, names its setting in that face's words only and reads "Problem. Fix: ..."."""

from __future__ import annotations

import math
import re

import pytest

from napari_pix2pix import errors
from napari_pix2pix.messages import EXTRA_WORDS, render, schema_options, setting_words
from napari_pix2pix.schema import FACES

SHAPE = re.compile(r"^[^\n]+[.!?] Fix: [^\n]+\.$")


def _error_classes():
    out, todo = [], [errors.Pix2PixError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(out), key=lambda c: c.__name__)


def _settings():
    return sorted(set(schema_options()) | set(EXTRA_WORDS))


def _foreign_words(name: str, face: str) -> list[str]:
    """Other faces' words for ``name`` that are not part of this face's own words."""
    own = setting_words(name, face)
    return [w for w in (setting_words(name, f) for f in FACES if f != face) if w not in own]


def _check(text: str, name: str, face: str) -> None:
    assert SHAPE.match(text), text
    assert setting_words(name, face) in text, (face, text)
    for word in _foreign_words(name, face):
        assert word not in text, (face, word, text)
    if face != "cli":
        assert not re.search(r"(?<![\w-])--[a-z]", text), text


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("face", FACES)
def test_every_error_class_in_every_face(cls, face):
    for name in _settings():
        err = cls(f"`{name}` does not fit", f"change `{name}`", setting=name)
        assert err.setting == name
        _check(render(err, face), name, face)


@pytest.mark.parametrize("face", FACES)
def test_schema_refusals_in_every_face(face):
    """The engine's own refusals (out of range, not a choice, not finite) for every option with a
    range or choices, raised by the configuration classes themselves."""
    from napari_pix2pix import config

    classes = (config.ModelConfig, config.AugmentConfig, config.NormConfig, config.DataConfig,
               config.TrainConfig, config.TileConfig)
    seen = 0
    for cls in classes:
        from napari_pix2pix.schema import options_of

        for opt in options_of(cls):
            bad = []
            if opt.choices is not None:
                bad.append("no-such-choice")
            if opt.range is not None:
                low, high = opt.range
                bad.append((low - 1) if low is not None else (high + 1))
                if isinstance(opt.default, float):
                    bad.append(math.nan)
            for value in bad:
                with pytest.raises(errors.ConfigError) as info:
                    cls(**{opt.name: value})
                assert info.value.setting == opt.name
                if opt.name in schema_options() and schema_options()[opt.name] != opt:
                    continue  # a same-named option of another class (device, seed): words are shared
                _check(render(info.value, face), opt.name, face)
                seen += 1
    assert seen > 20


def test_older_texts_with_cli_flags_read_in_each_face():
    err = errors.InputError("out of memory while translating", "use smaller tiles (--tile 256) or --device cpu")
    assert "--tile 256" in render(err, "cli")
    for face in ("napari", "nodes"):
        text = render(err, face)
        assert "--" not in text and setting_words("tile", face) in text and setting_words("device", face) in text


def test_missing_full_stop_is_added_and_long_reports_fold():
    err = errors.DatasetError("pairs do not match:\n" + "\n".join(f"- pair {i} differs" for i in range(9)),
                              "fix the listed pairs")
    for face in FACES:
        text = render(err, face)
        assert SHAPE.match(text) and "\n" not in text and "5 more" in text


def test_cli_prints_the_rendered_message(tmp_path, capsys):
    from napari_pix2pix.cli import main

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and " Fix: " in err and err.endswith(".")
