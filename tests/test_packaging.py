"""What users install: the wheel's contents, the napari manifest entry point, a cheap import."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(REPO), "-w", str(out)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr[-300:]}")
    return zipfile.ZipFile(next(out.glob("*.whl")))


def test_wheel_ships_manifest_and_samples_but_no_top_level_nodes(wheel):
    names = set(wheel.namelist())
    assert "napari_pix2pix/napari.yaml" in names
    for sample in ("nuclei-2d/img2d.tif", "nuclei-2d/mask2d.tif", "nuclei-2d/LICENSE",
                   "nuclei-3d/nuclei.tif", "nuclei-3d/nuclei_label.tif", "nuclei-3d/LICENSE"):
        assert f"napari_pix2pix/sample_data/{sample}" in names
    assert not any(n.startswith("nodes/") for n in names), "nodes/ must never be a top-level package"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "[napari.manifest]" in text and "napari_pix2pix:napari.yaml" in text
    assert "napari-pix2pix = napari_pix2pix.cli:main" in text
    manifest = wheel.read("napari_pix2pix/napari.yaml").decode()
    assert manifest == (REPO / "napari.yaml").read_text()


def test_import_is_cheap_and_torch_free():
    code = ("import sys, time; t = time.perf_counter(); import napari_pix2pix as p; "
            "dt = time.perf_counter() - t; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert not any(m.split('.')[0] in ('qtpy', 'PyQt6', 'napari', 'magicgui') for m in sys.modules); "
            "p.ModelConfig; assert 'torch' not in sys.modules; print(dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 0.5


def test_engine_never_imports_gui_modules():
    engine = [p for p in (REPO / "napari_pix2pix").rglob("*.py") if "_napari" not in p.parts]
    offenders = [str(p.relative_to(REPO)) for p in engine
                 if any(f"import {m}" in p.read_text() or f"from {m}" in p.read_text()
                        for m in ("qtpy", "PyQt", "napari.", "napari ", "magicgui"))]
    assert not offenders
