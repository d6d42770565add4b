"""Issue 18: the colorize task (L -> ab) in the engine, the CLI, napari and the nodes. Tiny models."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_pix2pix.config import TileConfig  # noqa: E402
from napari_pix2pix.errors import DatasetError  # noqa: E402


def photo(h=64, w=80, seed=0) -> np.ndarray:
    """A smooth colourful uint8 RGB image."""
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    rng = np.random.default_rng(seed)
    rgb = np.stack([np.sin(3 * xx + rng.random()), np.cos(2 * yy), xx * yy], -1) * 0.5 + 0.5
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def colorize_model(generator="unet_64"):
    """A random colorize model (1 -> 2 channels, task recorded as training records it)."""
    from napari_pix2pix.checkpoint import Checkpoint
    from napari_pix2pix.config import ModelConfig
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import build_discriminator, build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(generator=generator, ngf=4, ndf=4, discriminator_layers=2, in_channels=1, out_channels=2)
    gen = build_generator(cfg)
    with torch.no_grad():  # running statistics from one batch: outputs of a useful size
        for m in gen.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0
        gen.train()(torch.rand(4, 1, 64, 64) * 2 - 1)
    data = {"task": "colorize", "source": {"kind": "colorize", "task": "colorize", "rgb_dtype": "uint8"}}
    return Pix2PixModel.from_checkpoint(Checkpoint(model=cfg, generator=gen.state_dict(),
                                                   discriminator=build_discriminator(cfg).state_dict(), data=data))


@pytest.fixture(scope="module")
def model(one_torch_thread):
    return colorize_model()


# ------------------------------------------------------------------------------------ engine
def test_lab_normalisation_is_the_stated_one():
    from napari_pix2pix.tasks import rgb_to_model

    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 3, 1)
    l_norm, ab = rgb_to_model(rgb)
    np.testing.assert_allclose(l_norm[0, 0, :2, 0].numpy(), [1.0, -1.0], atol=1e-3)  # L 100 -> 1, 0 -> -1
    np.testing.assert_allclose(ab[0, :, :2, 0].numpy(), 0.0, atol=1e-3)  # gray: no chroma
    lab_red = np.array([53.24, 80.09, 67.20])  # sRGB red in Lab (D65)
    np.testing.assert_allclose((l_norm[0, 0, 2, 0].item() + 1) * 50, lab_red[0], atol=0.1)
    np.testing.assert_allclose(ab[0, :, 2, 0].numpy() * 110, lab_red[1:], atol=0.2)


def test_pairs_from_rgb_images_only():
    from napari_pix2pix.tasks import colorize_dataset

    ds = colorize_dataset([photo(), photo(48, 64, 1)], names=["a", "b"])
    assert (ds.in_channels, ds.out_channels, len(ds)) == (1, 2, 2)
    assert ds.source["task"] == "colorize" and ds.source["rgb_dtype"] == "uint8"
    assert ds.pairs[0].a.shape == (1, 64, 80) and ds.pairs[0].b.shape == (2, 64, 80)
    assert -1.01 <= ds.pairs[0].a.min() and ds.pairs[0].a.max() <= 1.01
    with pytest.raises(DatasetError, match="RGB"):
        colorize_dataset([photo()[..., 0]])


def test_round_trip_keeps_the_lightness(model):
    """L from an RGB image -> the model's ab -> RGB with the same L."""
    from napari_pix2pix.inference import translate
    from napari_pix2pix.tasks import lightness, unit_rgb

    rgb = photo()
    out = translate(model, rgb, config=TileConfig(tile=0), output_dtype="float32")
    assert out.shape == rgb.shape and out.dtype == np.float32
    np.testing.assert_allclose(lightness(out), lightness(unit_rgb(rgb)), atol=0.05)
    # a grayscale input gives an RGB output in its dtype; stacks stay stacks
    gray = rgb[..., 1]
    out8 = translate(model, gray, config=TileConfig(tile=0))
    assert out8.shape == gray.shape + (3,) and out8.dtype == np.uint8
    stack = translate(model, np.stack([gray, gray]), config=TileConfig(tile=64, overlap=8))
    assert stack.shape == (2,) + gray.shape + (3,)
    np.testing.assert_allclose(lightness(out8 / 255.0), lightness(np.repeat(gray[..., None] / 255.0, 3, -1)), atol=0.6)


def test_task_is_saved_and_loaded_and_old_files_are_translate(model, tmp_path, tiny_model_file):
    from napari_pix2pix.model import Pix2PixModel

    loaded = Pix2PixModel.load(model.save(tmp_path / "c.safetensors"))
    assert loaded.task == "colorize" and loaded.info()["task"] == "colorize"
    assert Pix2PixModel.load(tiny_model_file).task == "translate"  # written with no task: translate


def test_cli_pair_train_translate_colorize(tmp_path, one_torch_thread):
    import tifffile

    from napari_pix2pix.cli import main
    from napari_pix2pix.model import Pix2PixModel

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        tifffile.imwrite(folder / f"p{i}.tif", photo(64, 64, i))
    assert main(["pair", "--task", "colorize", "--source", str(folder)]) == 0
    out = tmp_path / "col.safetensors"
    assert main(["train", "--task", "colorize", "--source", str(folder), "--out", str(out), "--steps", "1",
                 "--generator", "unet_64", "--ngf", "4", "--ndf", "4", "--crop", "64", "--device", "cpu",
                 "--quiet"]) == 0
    assert Pix2PixModel.load(out).task == "colorize"
    tifffile.imwrite(tmp_path / "gray.tif", photo(64, 64, 5)[..., 0])
    assert main(["translate", "--model", str(out), "--input", str(tmp_path / "gray.tif"), "--output",
                 str(tmp_path / "rgb.tif"), "--device", "cpu", "--quiet"]) == 0
    rgb = tifffile.imread(tmp_path / "rgb.tif")
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    with pytest.raises(SystemExit):  # colorize takes no target
        main(["pair", "--task", "colorize", "--source", str(folder), "--target", str(folder)])


def test_uncertainty_of_a_colorize_model_is_per_channel(model):
    from napari_pix2pix.uncertainty import translate_samples

    res = translate_samples(model, photo(), config=TileConfig(tile=0), samples=2, realism=True)
    assert res.output.shape == res.uncertainty.shape == (64, 80, 3)
    assert res.output.dtype == np.uint8 and res.uncertainty.dtype == np.float32
    assert res.realism.shape == (64, 80)


# ------------------------------------------------------------------------------------- nodes
def test_nodes_pair_colorize_and_translate_outputs(model):
    from test_nodes import PACK, load_pack

    nodes = load_pack("pix2pix_pack_colorize", PACK / "__init__.py").NODE_CLASS_MAPPINGS
    frames = torch.from_numpy(np.stack([photo(), photo(seed=1)]).astype(np.float32) / 255)
    dataset, report = nodes["Pix2PixPairImages"]().pair(frames, task="colorize")
    assert (dataset.in_channels, dataset.out_channels) == (1, 2) and "2 pair(s)" in report
    with pytest.raises(DatasetError):
        nodes["Pix2PixPairImages"]().pair(frames.mean(-1, keepdim=True).repeat(1, 1, 1, 3), task="colorize")
    node = nodes["Pix2PixTranslate"]()
    image, mask, unc, real = node.translate(model, frames, tile=0, overlap=0, samples=2, realism=True)
    assert image.shape == (2, 64, 80, 3) and mask.shape == unc.shape == real.shape == (2, 64, 80)
    assert float(unc.max()) > 0 and 0 <= float(real.min()) <= float(real.max()) <= 1
    gray = frames[..., :1]
    image, mask, unc, real = node.translate(model, gray, tile=0, overlap=0)
    assert image.shape == (2, 64, 80, 3) and float(unc.abs().max()) == 0 and float(real.abs().max()) == 0


# ------------------------------------------------------------------------------------ napari
def test_napari_layers_for_colour_uncertainty_and_realism(make_napari_viewer, model):
    pytest.importorskip("napari")
    from types import SimpleNamespace

    from napari_pix2pix._napari._colorize import add_result_layers, colorize_sample, translate_maps_data

    viewer = make_napari_viewer()
    viewer.open_sample("napari-pix2pix", "colorize-photos")
    assert [ly.rgb for ly in viewer.layers] == [True, True, False]
    gray = viewer.add_image(photo()[..., 0], name="gray", scale=(0.5, 2.0), translate=(3.0, -1.0))
    layers = add_result_layers(viewer, translate_maps_data(gray, model, tile=0, overlap=0, samples=2,
                                                             realism=True))
    out, unc, real = layers
    assert type(out).__name__ == "Image" and out.rgb and out.data.shape == (64, 80, 3)
    assert unc.name.endswith("[uncertainty]") and not unc.rgb and unc.data.shape == (64, 80)
    assert unc.colormap.name == "magma" and unc.contrast_limits[1] > 0
    assert real.name.endswith("[realism]") and tuple(real.contrast_limits) == (0.0, 1.0)
    for layer in layers:
        np.testing.assert_allclose(layer.scale, (0.5, 2.0))
        np.testing.assert_allclose(layer.translate, (3.0, -1.0))
    plain = translate_maps_data(SimpleNamespace(name="g", data=photo()[..., 0], scale=(1, 1), translate=(0, 0),
                                                rgb=False), model, tile=0, overlap=0)
    assert len(plain) == 1 and plain[0][1]["rgb"] and plain[0][2] == "image"
    assert len(colorize_sample()) == 3


# ------------------------------------------------------------------------- evaluation in RGB
def test_evaluate_and_quality_maps_judge_a_colorize_model_in_rgb(model, monkeypatch):
    """A colorize model is scored on colour images: its colours against theirs, in RGB."""
    import napari_pix2pix.evaluate as ev
    from napari_pix2pix.errors import InputError
    from napari_pix2pix.tasks import colorize_dataset

    rgb = photo()
    rough = ev.evaluate(model, rgb)
    assert [r["name"] for r in rough.images] == ["image"] and rough.mean["SSIM"] < 0.99
    truth = torch.from_numpy(colorize_dataset(rgb).pairs[0].b[None])
    monkeypatch.setattr(ev, "predict", lambda m, a, config=None: truth)  # a perfect colourist
    perfect = ev.evaluate(model, rgb)
    assert perfect.mean["SSIM"] > 0.99 and perfect.mean["PSNR"] > rough.mean["PSNR"] + 10
    monkeypatch.undo()

    gray = rgb.mean(-1).astype(np.uint8)
    maps = ev.quality_maps(model, gray, rgb)
    assert maps["ssim_map"].shape == maps["abs_error"].shape == gray.shape
    assert maps["output"].shape == rgb.shape and maps["output"].dtype == np.uint8
    assert 0 < float(maps["abs_error"].mean()) < 1
    with pytest.raises(InputError, match="colours.*gray"):
        ev.quality_maps(model, gray, gray)
