"""bioimage.io export: a package (folder or .zip) that bioimageio.core's model test accepts, offline."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import yaml

from napari_pix2pix.export import ExportError, export_model


def test_package_passes_bioimageio_core_model_test(tiny_model_file, tmp_path):
    core = pytest.importorskip("bioimageio.core", reason="the [bioimageio] extra is not installed")
    out = tmp_path / "pkg"
    result = export_model(tiny_model_file, out, format="bioimageio")
    names = sorted(p.name for p in out.iterdir())
    assert {"rdf.yaml", "weights.pt", "test_input.npy", "test_output.npy", "cover.png", "README.md"} <= set(names)
    rdf = yaml.safe_load((out / "rdf.yaml").read_text())
    assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
    assert [a.get("id", a["type"]) for a in rdf["inputs"][0]["axes"]] == ["batch", "channel", "y", "x"]
    assert rdf["inputs"][0]["preprocessing"][0]["id"] == "scale_linear"  # dataset percentiles: one affine map
    assert rdf["outputs"][0]["postprocessing"] == [{"id": "binarize", "kwargs": {"threshold": 0.0}}]  # mask
    print("measured:", result.parity)
    assert result.parity["pipeline vs translate (data units)"] <= 1e-3
    summary = core.test_model(str(out / "rdf.yaml"))  # offline: everything is local
    assert summary.status == "passed", summary.format()
    # every weights format was run against the test output
    tested = {d.name for d in summary.details if d.status == "passed"}
    for fmt in result.weights:  # torchscript, and onnx when the onnx extra is installed
        assert any(fmt in n for n in tested), (fmt, tested)


def test_zip_package_and_refusals(tiny_model_file, tmp_path):
    from napari_pix2pix.model import Pix2PixModel

    z = export_model(tiny_model_file, tmp_path / "pkg.zip", format="bioimageio", onnx=False)
    with zipfile.ZipFile(z.path) as zf:
        assert "rdf.yaml" in zf.namelist() and "weights.pt" in zf.namelist()
        test_out = np.load(zf.open("test_output.npy"))
    assert test_out.dtype == np.float32 and test_out.ndim == 4
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(ExportError, match="not an empty folder"):
        export_model(tiny_model_file, busy, format="bioimageio")
    model = Pix2PixModel.load(tiny_model_file)
    model.checkpoint.data["norm_b"]["label_encoding"] = "onehot"
    model.checkpoint.data["norm_b"]["n_classes"] = 3
    with pytest.raises(ExportError, match="one-hot.*Fix: export to ONNX"):
        export_model(model, tmp_path / "onehot", format="bioimageio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "pkg.zip"]  # nothing partial left
