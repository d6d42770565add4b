"""Evaluation of a model on paired data: engine (evaluate, quality_maps) and the `evaluate` CLI."""

import json
import math

import numpy as np
import pytest
import tifffile
import torch

from napari_pix2pix import cli
from napari_pix2pix.config import DataConfig, TileConfig
from napari_pix2pix.data.sources import from_arrays
from napari_pix2pix.errors import InputError
from napari_pix2pix.evaluate import SHEET_GAP, contact_sheet, evaluate, predict, quality_maps
from napari_pix2pix.inference import translate
from napari_pix2pix.io import read_image
from napari_pix2pix.metrics import image_metrics, sharpness
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.training import Trainer

from _helpers import nuclei_2d, tiny_model, tiny_train

H, W = 70, 90  # not a multiple of the U-Net's 32: evaluation pads like translation


@pytest.fixture(scope="module")
def data():
    image, labels = nuclei_2d()
    return image[:H, :W].copy(), labels[:H, :W].copy()


def _train(a, b, path):
    torch.set_num_threads(1)
    trainer = Trainer(tiny_model(), tiny_train(steps=2), from_arrays(a, b, DataConfig()), out=path)
    trainer.run()
    return Pix2PixModel.load(path)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    image, labels = data
    root = tmp_path_factory.mktemp("models")
    return {"m2i": _train(labels, image, root / "m2i.safetensors"),
            "i2m": _train(image, labels, root / "i2m.safetensors")}


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    image, labels = data
    root = tmp_path_factory.mktemp("files")
    tifffile.imwrite(root / "img.tif", image)
    tifffile.imwrite(root / "mask.tif", labels)
    return root


def _by_hand(model, source, target):
    """The metrics from their definitions: model normalisations, generator in eval mode."""
    a = torch.from_numpy(model.normalization("a").forward(source[None])[None])
    b = torch.from_numpy(model.normalization("b").forward(target[None])[None])
    with torch.no_grad():
        model.generator.eval()
        pad = torch.nn.functional.pad(a, (0, 96 - W, 0, 96 - H), mode="reflect")
        fake = model.generator(pad)[..., :H, :W]
    return fake, b


def test_evaluate_matches_the_metric_definitions(models, data):
    image, labels = data
    model = models["m2i"]
    result = evaluate(model, labels, image, config=TileConfig(tile=0))
    assert [r["name"] for r in result.images] == ["pair"]
    row = result.images[0]
    fake, b = _by_hand(model, labels, image)
    expected = image_metrics(fake, b)
    for k in ("L1", "PSNR", "SSIM"):
        assert row[k] == pytest.approx(expected[k], rel=1e-4, abs=1e-5)
    assert row["Sharpness"] == pytest.approx(sharpness(fake, b), rel=1e-4)
    assert "Dice" not in row  # B is an intensity image for this model
    assert result.mean == {k: v for k, v in row.items() if k != "name"}


def test_target_equal_to_the_output_scores_perfectly(models, data):
    image, labels = data
    model = models["m2i"]
    out = translate(model, labels, config=TileConfig(tile=0), output_dtype="float32")
    row = evaluate(model, labels, out, config=TileConfig(tile=0)).images[0]
    assert row["PSNR"] > 80 and row["SSIM"] == pytest.approx(1, abs=1e-4)
    assert row["L1"] < 1e-4 and row["Sharpness"] == pytest.approx(1, abs=1e-3)


def test_label_targets_report_dice_and_iou(models, data):
    image, labels = data
    row = evaluate(models["i2m"], image, labels).images[0]
    assert {"Dice", "IoU"} <= set(row) and 0 <= row["IoU"] <= row["Dice"] <= 1
    # a target made of the model's own thresholded output agrees perfectly
    mask = translate(models["i2m"], image)
    assert set(np.unique(mask)) <= {0, 1}
    perfect = evaluate(models["i2m"], image, mask).images[0]
    assert perfect["Dice"] == 1.0 and perfect["IoU"] == 1.0


def test_quality_maps_agree_with_the_metrics(models, data):
    image, labels = data
    model = models["m2i"]
    maps = quality_maps(model, labels, image)
    assert set(maps) == {"ssim_map", "abs_error", "output"}
    assert maps["ssim_map"].shape == maps["abs_error"].shape == (H, W)
    assert maps["ssim_map"].dtype == maps["abs_error"].dtype == np.float32
    assert maps["output"].shape == (H, W) and maps["output"].dtype == image.dtype
    row = evaluate(model, labels, image).images[0]
    assert float(maps["ssim_map"].mean()) == pytest.approx(row["SSIM"], abs=1e-5)
    assert float(maps["abs_error"].mean()) == pytest.approx(row["L1"] / 2, rel=1e-4)
    assert np.array_equal(maps["output"], translate(model, labels))
    # stacks: one map per slice
    stack = quality_maps(model, np.stack([labels, labels[::-1]]), np.stack([image, image[::-1]]))
    assert stack["ssim_map"].shape == (2, H, W)
    np.testing.assert_allclose(stack["ssim_map"][0], maps["ssim_map"], atol=1e-3)  # batched convs round differently


def test_mismatched_pairs_are_explained(models, data):
    image, labels = data
    with pytest.raises(InputError, match="do not match"):
        quality_maps(models["m2i"], labels, image[:-2])
    with pytest.raises(InputError, match="channel"):
        quality_maps(models["m2i"], labels, np.stack([image] * 3, -1).astype(np.uint8), channel_axis=-1)


def test_cli_json_maps_and_contact_sheet(models, files, tmp_path, capsys):
    maps = tmp_path / "maps"
    rc = cli.main(["evaluate", "--model", models["m2i"].path, "--source", str(files / "mask.tif"),
                   "--target", str(files / "img.tif"), "--json", "--maps", str(maps), "--tile", "64",
                   "--overlap", "16"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["images"]
    assert row["name"] == "mask" and set(row) >= {"L1", "PSNR", "SSIM", "Sharpness"}
    assert sorted(p.name for p in maps.iterdir()) == ["contact_sheet.png", "mask_error.tif", "mask_ssim.tif"]
    ssim = read_image(maps / "mask_ssim.tif")
    err = read_image(maps / "mask_error.tif")
    assert ssim.shape == err.shape == (H, W) and ssim.dtype == err.dtype == np.float32
    assert float(ssim.mean()) == pytest.approx(row["SSIM"], abs=1e-5)
    assert float(err.mean()) == pytest.approx(row["L1"] / 2, rel=1e-4)
    sheet = read_image(maps / "contact_sheet.png")
    assert sheet.dtype == np.uint8 and sheet.shape == (H, 4 * W + 3 * SHEET_GAP, 3)
    assert report["sheet"] == str(maps / "contact_sheet.png")


def test_cli_table_folders_and_sheet_path(models, data, tmp_path, capsys):
    image, labels = data
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    for name, sl in (("a", np.s_[:, :]), ("b", np.s_[::-1, :])):
        tifffile.imwrite(tmp_path / "A" / f"{name}.tif", image[sl])
        tifffile.imwrite(tmp_path / "B" / f"{name}.tif", labels[sl])
    sheet = tmp_path / "sheet.png"
    rc = cli.main(["evaluate", "--model", models["i2m"].path, "--source", str(tmp_path / "A"),
                   "--target", str(tmp_path / "B"), "--sheet", str(sheet)])
    assert rc == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["image", "L1", "PSNR", "SSIM", "Sharpness", "Dice", "IoU"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["a", "b", "mean"]
    rows = [[float(v) for v in ln.split()[1:]] for ln in lines[2:5]]
    np.testing.assert_allclose(rows[2], np.mean(rows[:2], axis=0), atol=2e-4)  # printed with 4 decimals
    assert read_image(sheet).shape == (2 * H + SHEET_GAP, 4 * W + 3 * SHEET_GAP, 3)
    # bad input: one-line message, exit code 1
    assert cli.main(["evaluate", "--model", models["i2m"].path, "--source", str(tmp_path / "A"),
                     "--target", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_contact_sheet_panels_are_rescaled():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, -0.8, (1, 20, 30)).astype(np.float32)  # a dim input still fills 0..255
    b = rng.uniform(-1, 1, (1, 20, 30)).astype(np.float32)
    sheet = contact_sheet([(a, b * 0.5, b)])
    assert sheet.shape == (20, 4 * 30 + 3 * SHEET_GAP, 3) and sheet.dtype == np.uint8
    panel = sheet[:, :30, 0]
    assert panel.min() == 0 and panel.max() == 255
    gap = sheet[:, 30:30 + SHEET_GAP]
    assert (gap == 128).all()
    big = contact_sheet([(np.zeros((3, 1100, 600), np.float32),) * 3])  # RGB, subsampled to <= 512
    assert big.shape[0] <= 512 and big.shape[2] == 3


def test_predict_uses_tiles_like_translate(models, data):
    image, labels = data
    model = models["m2i"]
    a = torch.from_numpy(model.normalization("a").forward(labels[None])[None])
    whole = predict(model, a, TileConfig(tile=0))
    tiled = predict(model, a, TileConfig(tile=64, overlap=16))
    assert whole.shape == tiled.shape == (1, 1, H, W)
    assert math.isfinite(float(tiled.sum()))
