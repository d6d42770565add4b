"""The Predictor: one tile/overlap rule, the same result as translate, no torch at import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_pix2pix.config import TileConfig
from napari_pix2pix.errors import ConfigError, InputError
from napari_pix2pix.predict import Predictor, clamp_tiling, resolve_backend, run_tiles

from _helpers import REPO


def test_clamp_tiling_is_the_one_rule():
    assert clamp_tiling(0, 64) == (0, 0)  # whole image: no overlap
    assert clamp_tiling(512, 64) == (512, 64)
    assert clamp_tiling(64, 40) == (64, 31)  # below half the tile
    assert clamp_tiling(2, 5) == (2, 0)


def test_run_tiles_blends_to_the_identity():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 70, 131)).astype(np.float32)
    calls = []

    def run(batch):
        calls.append(batch.shape)
        return batch * 2

    y = run_tiles(run, x, tile=32, overlap=8, batch_size=5, size_multiple=4)
    assert y.shape == x.shape and np.allclose(y, 2 * x, atol=1e-5)
    assert all(s[-2:] == (32, 32) for s in calls)


def test_predictor_is_what_translate_runs(tiny_model_file):
    from napari_pix2pix.inference import translate
    from napari_pix2pix.model import Pix2PixModel

    model = Pix2PixModel.load(tiny_model_file)
    image = np.random.default_rng(0).integers(0, 200, (70, 90)).astype(np.uint16)
    config = TileConfig(tile=32, overlap=8)
    a = Predictor.from_model(model, config).predict(image, output_dtype="float32")
    b = translate(model, image, config=config, output_dtype="float32")
    c = translate(Predictor.load(tiny_model_file, config=config), image, output_dtype="float32")
    assert np.array_equal(a, b) and np.array_equal(a, c)
    with pytest.raises(InputError, match="no dropout"):  # samples > 1: the Predictor's stochastic passes
        Predictor.from_model(model, config).predict(image, samples=2)


def test_backend_choice_is_explained(tmp_path):
    assert resolve_backend("m.onnx") == "onnxruntime" and resolve_backend("m.safetensors") == "torch"
    with pytest.raises(ConfigError, match="export it first"):
        resolve_backend("m.safetensors", "onnxruntime")
    with pytest.raises(ConfigError, match="use --backend onnxruntime"):
        resolve_backend("m.onnx", "torch")
    with pytest.raises(ConfigError, match="not one of"):
        resolve_backend("m.onnx", "tensorrt")


def test_package_predict_and_backends_import_without_torch():
    code = ("import sys; import napari_pix2pix, napari_pix2pix.predict, napari_pix2pix.inference, "
            "napari_pix2pix.backends.onnxruntime, napari_pix2pix.export, napari_pix2pix.cli, "
            "napari_pix2pix.dask_inference; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_colorize_and_samples_go_through_the_predictor(monkeypatch, tmp_path, one_torch_thread):
    """Colorize, stochastic samples and realism maps in the engine, the CLI and the nodes all
    run Predictor.sample (no path beside it)."""
    import tifffile
    import torch

    from test_colorize import colorize_model, photo
    from test_nodes import PACK, load_pack
    from test_uncertainty import random_model

    from napari_pix2pix.cli import main
    from napari_pix2pix.inference import translate
    from napari_pix2pix.uncertainty import translate_samples

    calls = []
    real = Predictor.sample

    def spy(self, image, **kw):
        calls.append((self.task.name, kw.get("samples") or self.config.samples, kw.get("realism")))
        return real(self, image, **kw)

    monkeypatch.setattr(Predictor, "sample", spy)
    colour, dropout = colorize_model(), random_model()
    out = translate(colour, photo()[..., 0], config=TileConfig(tile=0))
    assert out.shape == (64, 80, 3) and calls[-1][0] == "colorize"
    res = translate_samples(dropout, photo()[..., 0], config=TileConfig(tile=0), samples=2, realism=True)
    assert res.uncertainty is not None and calls[-1] == ("translate", 2, True)
    path = colour.save(tmp_path / "c.safetensors")
    tifffile.imwrite(tmp_path / "g.tif", photo()[..., 0])
    n = len(calls)
    assert main(["translate", "--model", str(path), "--input", str(tmp_path / "g.tif"), "--output",
                 str(tmp_path / "o.tif"), "--device", "cpu", "--quiet", "--samples", "2"]) == 0
    assert len(calls) == n + 1 and calls[-1][0] == "colorize" and tifffile.imread(tmp_path / "o.tif").shape[-1] == 3
    nodes = load_pack("pix2pix_pack_predictor_spy", PACK / "__init__.py").NODE_CLASS_MAPPINGS
    frames = torch.from_numpy(photo()[None].astype(np.float32) / 255)
    nodes["Pix2PixTranslate"]().translate(colour, frames, tile=0, overlap=0, samples=2, realism=True)
    assert calls[-1] == ("colorize", 2, True)


def test_colorize_runs_with_dask_and_onnxruntime(tmp_path, one_torch_thread):
    """The colorize task is the Predictor's, so dask blocks and an exported .onnx give RGB too."""
    pytest.importorskip("dask")
    pytest.importorskip("onnxruntime")
    from test_colorize import colorize_model, photo

    from napari_pix2pix.dask_inference import translate_dask
    from napari_pix2pix.export.onnx import export_onnx

    model, gray = colorize_model(), photo()[..., 0]
    config = TileConfig(tile=0)
    ours = Predictor.from_model(model, config).predict(gray, output_dtype="float32")
    assert ours.shape == gray.shape + (3,)
    lazy = translate_dask(model, gray, config, output_dtype="float32")
    assert lazy.shape == ours.shape
    np.testing.assert_allclose(lazy.compute(), ours, atol=1e-5)
    onnx = Predictor.load(export_onnx(model, tmp_path / "c.onnx").path, config=config)
    assert onnx.task.name == "colorize"
    np.testing.assert_allclose(onnx.predict(gray, output_dtype="float32"), ours, atol=2e-3)
    with pytest.raises(ConfigError, match="ONNX"):
        onnx.sample(gray, samples=2)
