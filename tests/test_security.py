"""Security: no pickle outside the weights-only import path, crafted .pth files run no code,
safetensors headers are parsed defensively, and names from graph nodes stay inside their folders.
Also the property test of the discriminator's receptive-field boxes (autograd)."""

from __future__ import annotations

import ast
import json
import os
import struct
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_pix2pix import cli
from napari_pix2pix.checkpoint import Checkpoint, load_checkpoint, read_header, save_checkpoint
from napari_pix2pix.config import ModelConfig
from napari_pix2pix.errors import InputError, ModelFileError
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.models import build_discriminator, build_generator, geometry
from napari_pix2pix.paths import safe_join
from napari_pix2pix.reference import generator_key_map, import_reference


pytestmark = pytest.mark.usefixtures("one_torch_thread")


ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in (ROOT / "napari_pix2pix", ROOT / "nodes") if d.is_dir() for p in d.rglob("*.py"))


# ------------------------------------------------------------------------------ no pickle
def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_sources_use_no_pickle_except_the_weights_only_import():
    assert any(p.name == "reference.py" for p in SOURCES)
    problems = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        tree = ast.parse(text)
        if "allow_pickle=True" in text.replace(" ", ""):
            problems.append(f"{rel}: allow_pickle=True")
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in ("cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib") or \
                        (top == "pickle" and path.name != "reference.py"):
                    problems.append(f"{rel}:{node.lineno}: imports {name}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pickle" \
                    and node.attr != "UnpicklingError":
                problems.append(f"{rel}:{node.lineno}: pickle.{node.attr}")
        for call, func in _calls(tree):
            kwargs = {k.arg: k.value for k in call.keywords}
            if func == "torch.load" or func.endswith(".torch.load"):
                value = kwargs.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{rel}:{call.lineno}: torch.load without weights_only=True")
            if func.endswith("jit.load") or func.endswith("read_pickle") or func.endswith("pickle.load") \
                    or func.endswith("pickle.loads"):
                problems.append(f"{rel}:{call.lineno}: {func}")
            if func in ("np.load", "numpy.load"):
                value = kwargs.get("allow_pickle")
                if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                    problems.append(f"{rel}:{call.lineno}: np.load with allow_pickle")
    assert not problems, "\n".join(problems)


def test_the_only_torch_load_is_in_reference_py():
    users = [p.name for p in SOURCES if "torch.load(" in p.read_text(encoding="utf-8")]
    assert users == ["reference.py"]


# ------------------------------------------------------------------------ crafted .pth
class _Payload:
    """Unpickling this calls ``func(*args)``: with a weights-only loader it must never run."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path):
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    yield "exec", _Payload(exec, (code,))
    yield "open", _Payload(open, (str(marker), "w"))
    if os.name == "posix":
        yield "os.system", _Payload(os.system, (f"touch {marker}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_crafted_pth_runs_no_code(tmp_path, legacy):
    marker = tmp_path / "marker"
    for name, payload in _payloads(marker):
        pth = tmp_path / f"evil-{name}.pth"
        state = {"model.model.0.weight": torch.zeros(4, 3, 4, 4), "extra": payload}
        torch.save(state, pth, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(ModelFileError) as err:
            import_reference(pth, tmp_path / "out.safetensors")
        text = str(err.value)
        assert "refused" in text and "could run code" in text and "Fix:" in text, text
        assert not marker.exists(), f"{name}: the payload ran"
        # the model-file loader never unpickles either
        with pytest.raises(ModelFileError, match="zip archive|pickle"):
            load_checkpoint(pth)
        assert not marker.exists()
        assert not (tmp_path / "out.safetensors").exists()
        # the CLI: exit 1, one line
        assert cli.main(["import", str(pth), "--out", str(tmp_path / "out.safetensors")]) == 1
        assert not marker.exists()
    # control: the payload is live (an unrestricted load would have run it)
    pth = tmp_path / "evil-exec.pth"
    torch.load(pth, weights_only=False)  # the test itself, never the package, does this
    assert marker.read_text() == "pwned"


def test_truncated_and_foreign_pth(tmp_path):
    config = ModelConfig(generator="unet_32", ngf=4, norm="instance", upsample="transposed")  # as the reference
    state = {generator_key_map(config)[k]: v for k, v in build_generator(config).state_dict().items()}
    torch.save(state, tmp_path / "G.pth")
    data = (tmp_path / "G.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        import_reference(tmp_path / "cut.pth", tmp_path / "m.safetensors")
    (tmp_path / "png.pth").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ModelFileError, match="PNG image"):
        import_reference(tmp_path / "png.pth", tmp_path / "m.safetensors")
    (tmp_path / "tiny.pth").write_bytes(b"PK")
    with pytest.raises(ModelFileError, match="bytes long"):
        import_reference(tmp_path / "tiny.pth", tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="does not exist"):
        import_reference(tmp_path / "missing.pth", tmp_path / "m.safetensors")
    save_checkpoint(tmp_path / "ours.safetensors",
                    Checkpoint(model=config, generator=build_generator(config).state_dict()))
    with pytest.raises(ModelFileError, match="need no import"):
        import_reference(tmp_path / "ours.safetensors", tmp_path / "m.safetensors")


# ------------------------------------------------------------------ crafted safetensors
def _write(path: Path, header, data: bytes = b"", declared: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + data)
    return path


_META = {"format": "napari-pix2pix", "model": json.dumps(ModelConfig(generator="unet_32", ngf=4).to_dict())}
_T = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

CRAFTED = {
    "empty": (b"", b"", 0, "bytes long"),
    "malformed json": (b"{not json at all", b"", None, "malformed safetensors header"),
    "not utf-8": (b'{"\xff\xfe": 1}', b"", None, "malformed"),
    "json list": (b"[1, 2, 3]", b"", None, "malformed safetensors header"),
    "absurd header size": (b"{}", b"", 2**62, "not a usable model file"),
    "header larger than file": (b"{}", b"", 4096, "truncated or not safetensors"),
    "wrong dtype": ({"__metadata__": _META, "generator/w": {**_T, "dtype": "F99"}}, bytes(8), None,
                    "malformed safetensors header.*F99"),
    "dtype not a string": ({"__metadata__": _META, "generator/w": {**_T, "dtype": ["F32"]}}, bytes(8), None,
                           "malformed"),
    "data beyond file": ({"__metadata__": _META, "generator/w": {**_T, "data_offsets": [0, 4000]}}, bytes(8), None,
                         "malformed.*(offset|usize)"),
    "negative offsets": ({"__metadata__": _META, "generator/w": {**_T, "data_offsets": [-8, 0]}}, bytes(8), None,
                         "malformed.*(offset|usize)"),
    "size vs shape": ({"__metadata__": _META, "generator/w": {**_T, "shape": [3]}}, bytes(8), None,
                      "malformed.*shape"),
    "absurd shape": ({"__metadata__": _META, "generator/w": {**_T, "shape": [2**40, 2**40]}}, bytes(8), None,
                     "malformed.*shape"),
    "negative dim": ({"__metadata__": _META, "generator/w": {**_T, "shape": [-2]}}, bytes(8), None, "malformed"),
    "missing fields": ({"__metadata__": _META, "generator/w": {"dtype": "F32"}}, bytes(8), None, "malformed"),
    "entry not a dict": ({"__metadata__": _META, "generator/w": 5}, bytes(8), None, "malformed"),
    "metadata not strings": ({"__metadata__": {"format": 1}}, b"", None, "malformed"),
    "overlapping tensors": ({"__metadata__": _META, "generator/a": _T, "generator/b": {**_T, "data_offsets": [4, 12]}},
                            bytes(12), None, "malformed.*offset"),
    "model metadata not json": ({"__metadata__": {**_META, "model": "{oops"}, "generator/w": _T}, bytes(8), None,
                                "not valid JSON"),
    "model metadata invalid": ({"__metadata__": {**_META, "model": json.dumps({"ngf": -3})}, "generator/w": _T},
                               bytes(8), None, "invalid configuration"),
    "step not a number": ({"__metadata__": {**_META, "step": "many"}, "generator/w": _T}, bytes(8), None,
                          "'step' is not a number"),
    "no generator": ({"__metadata__": _META, "discriminator/w": _T}, bytes(8), None, "no generator weights"),
    "foreign format": ({"__metadata__": {"format": "pt"}, "w": _T}, bytes(8), None, "another project"),
    "wrong keys": ({"__metadata__": _META, "generator/w": _T}, bytes(8), None,
                   "do not fit the architecture|file holds only"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_safetensors_give_model_file_errors(tmp_path, case):
    header, data, declared, expect = CRAFTED[case]
    path = _write(tmp_path / "m.safetensors", header, data, declared)
    if case == "empty":
        path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ModelFileError) as err:
        Pix2PixModel.load(path)
    text = str(err.value)
    assert "Fix:" in text and "\n" not in text
    import re

    assert re.search(expect, text), text


def test_read_header_accepts_a_real_file_and_rejects_truncation(tmp_path):
    config = ModelConfig(generator="unet_32", ngf=4, ndf=4, discriminator_layers=2)
    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint(
        model=config, generator=build_generator(config).state_dict(),
        discriminator=build_discriminator(config).state_dict()))
    entries, meta = read_header(path)
    assert meta["format"] == "napari-pix2pix" and entries
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 20, 7):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated|bytes long|not a usable"):
            Pix2PixModel.load(tmp_path / "cut.safetensors")


def test_cli_reports_crafted_files_in_one_line(tmp_path, capsys):
    path = _write(tmp_path / "m.safetensors", b"{not json")
    assert cli.main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Fix:" in err


# ----------------------------------------------------------------------------- safe_join
def test_safe_join_allows_names_inside(tmp_path):
    (tmp_path / "sub").mkdir()
    assert safe_join(tmp_path, "model.safetensors") == (tmp_path / "model.safetensors").resolve()
    assert safe_join(tmp_path, "sub/a.tif") == (tmp_path / "sub" / "a.tif").resolve()
    assert safe_join(str(tmp_path), Path("sub") / "b.tif") == (tmp_path / "sub" / "b.tif").resolve()
    assert safe_join(tmp_path, "./sub/./c.tif") == (tmp_path / "sub" / "c.tif").resolve()
    assert safe_join(tmp_path, "x..y.tif").name == "x..y.tif"  # dots inside a name are fine


@pytest.mark.parametrize("name", [
    "../secret.txt", "sub/../../secret.txt", "..", "a/..", "/etc/passwd", "\\\\server\\share\\x",
    "C:\\Windows\\win.ini", "C:x", "..\\secret.txt", "sub\\..\\..\\x", "", "   ", "a\x00b", ".", "./",
])
def test_safe_join_refuses_escapes(tmp_path, name):
    with pytest.raises(InputError) as err:
        safe_join(tmp_path, name)
    assert "Fix:" in str(err.value)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_safe_join_refuses_symlink_escapes(tmp_path):
    root, outside = tmp_path / "models", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.safetensors").write_bytes(b"x")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file-link.safetensors").symlink_to(outside / "secret.safetensors")
    (root / "inner").mkdir()
    (root / "ok-link").symlink_to(root / "inner", target_is_directory=True)
    for name in ("link/secret.safetensors", "file-link.safetensors", "link"):
        with pytest.raises(InputError, match="outside"):
            safe_join(root, name)
    assert safe_join(root, "ok-link/m.safetensors") == (root / "inner" / "m.safetensors").resolve()


# ------------------------------------------------------------- receptive field (property)
@settings(max_examples=25, deadline=None)
@given(layers=st.integers(1, 4), ndf=st.integers(1, 4), channels=st.integers(2, 4),
       extra=st.tuples(st.integers(0, 24), st.integers(0, 24)), cell=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       seed=st.integers(0, 2**16))
def test_cell_box_contains_every_influencing_pixel_property(layers, ndf, channels, extra, cell, seed):
    """Autograd on random small PatchGANs: a cell's gradient is zero outside its computed box,
    and reaches the box's edges (where the box is not clipped by the image)."""
    torch.manual_seed(seed)
    config = ModelConfig(generator="unet_32", in_channels=1, out_channels=channels - 1, ndf=ndf, norm="none",
                         discriminator_layers=layers)
    net = build_discriminator(config).double()
    for m in net.modules():  # weights of order one so no influence underflows
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    geo = geometry(net)
    minimum = 2 ** layers * 4  # big enough for a non-empty map
    h, w = minimum + extra[0], minimum + extra[1]
    x = torch.randn(1, channels, h, w, dtype=torch.double, requires_grad=True)
    out = net(x)
    assert tuple(out.shape[-2:]) == geo.map_size(h, w)
    i = min(int(cell[0] * out.shape[-2]), out.shape[-2] - 1)
    j = min(int(cell[1] * out.shape[-1]), out.shape[-1] - 1)
    out[0, 0, i, j].backward()
    rows, cols = torch.nonzero(x.grad.abs().sum((0, 1)), as_tuple=True)
    r0, c0, r1, c1 = geo.cell_box(i, j, h, w)
    assert rows.min() >= r0 and rows.max() <= r1 and cols.min() >= c0 and cols.max() <= c1
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (r0, r1, c0, c1)
