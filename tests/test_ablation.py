"""benchmarks/ablation.py runs end to end in its reduced (--quick) mode."""

import json

import numpy as np
import pytest

from napari_pix2pix.io import read_image

from _helpers import REPO, load_script


@pytest.fixture(scope="module")
def ablation():
    return load_script(REPO / "benchmarks" / "ablation.py", "ablation_script")


def test_quick_mode_end_to_end(ablation, tmp_path):
    import torch

    threads = torch.get_num_threads()
    report = ablation.main(["--quick", "--quiet", "--out", str(tmp_path)])
    assert torch.get_num_threads() == threads  # restored
    n_variants = len(ablation.VARIANTS)
    assert len(report["runs"]) == n_variants * len(ablation.DIRECTIONS)  # one seed in quick mode
    for run in report["runs"]:
        m = run["metrics"]
        assert set(m) >= {"PSNR", "SSIM", "Sharpness", "L1"}
        assert ({"Dice", "IoU"} <= set(m)) == (run["direction"] == "image->mask")
        assert run["rows"] == [128, 512]  # the held-out bottom strip of the 512x512 pair
        assert all(np.isfinite(v) for v in m.values())
    md = (tmp_path / "ablation.md").read_text()
    for _, rows in ablation.GROUPS:
        for label, _ in rows:
            assert md.count(f"| {label} |") == 2  # one row per direction
    assert "± " in md and "seeds [0]" in md
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["steps"] == ablation.QUICK["steps"]
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == len(report["runs"])
    sheet = read_image(tmp_path / "sheet_mask_to_image.png")
    assert sheet.dtype == np.uint8 and sheet.shape[0] == n_variants * 128 + (n_variants - 1) * 4


def test_summary_is_mean_and_sample_std_over_seeds(ablation):
    runs = [{"direction": "d", "variant": "v", "seed": s, "metrics": {"PSNR": p, "SSIM": float("nan")}}
            for s, p in enumerate([20.0, 22.0, 24.0])]
    stats = ablation.summarise(runs)[("d", "v")]
    assert stats["PSNR"] == (22.0, 2.0, 3)
    assert "SSIM" not in stats  # NaN everywhere: no entry
    assert ablation._cell(stats["PSNR"]) == "22.00 ± 2.00"


# ------------------------------------------------------------------ benchmarks/quality.py
@pytest.fixture(scope="module")
def quality():
    return load_script(REPO / "benchmarks" / "quality.py", "quality_script")


def test_quality_quick_mode_end_to_end(quality, tmp_path):
    """Baselines, two recipes and the label metrics on the image -> mask task, with a contact sheet."""
    import torch

    threads = torch.get_num_threads()
    report = quality.main(["--quick", "--quiet", "--tasks", "nuclei2d-i2m", "--seeds", "0",
                           "--recipes", "paper", "b1-ndf16-bilinear", "--out", str(tmp_path)])
    assert torch.get_num_threads() == threads  # restored
    assert [r["recipe"] for r in report["runs"]] == ["paper", "b1-ndf16-bilinear"]
    assert report["runs"][0]["model"]["upsample"] == "transposed"
    assert report["runs"][1]["model"]["upsample"] == "bilinear"
    for m in [r["metrics"] for r in report["runs"]] + list(report["baselines"]["nuclei2d-i2m"].values()):
        assert set(m) >= {"PSNR", "SSIM", "Corr", "Artefact", "Std ratio", "Dice", "IoU"}
        assert 0 <= m["Dice"] <= 1 and 0 <= m["IoU"] <= 1
    md = (tmp_path / "quality.md").read_text()
    assert "| baseline: mean |" in md and "| baseline: linear |" in md and "| paper | 2 steps |" in md
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2
    sheet = read_image(tmp_path / "sheet_nuclei2d-i2m.png")
    assert sheet.dtype == np.uint8 and sheet.ndim == 3


def test_quality_recipes_are_fixed_except_default(quality):
    """Named recipes do not move when the schema's defaults change; 'default' follows them."""
    from napari_pix2pix.config import ModelConfig, TrainConfig

    class _Data:
        in_channels = out_channels = 1

    settings = dict(generator="unet_32", ngf=4, crop=32)
    model, config = quality.configs("paper", settings, _Data, 0, 10)
    assert (model.upsample, model.ndf, config.batch_size) == ("transposed", 64, 1)
    model, config = quality.configs("default", settings, _Data, 0, 10)
    assert model.upsample == ModelConfig().upsample and config.batch_size == TrainConfig().batch_size


def test_quality_l1_recipe_is_the_quick_cpu_preset(quality):
    """QUALITY.md reports `b2-ndf16-bilinear-l1` as the quick-cpu preset at 300 steps (its
    `select_best` measured by the `-best` recipe at 1000 steps): keep them equal."""
    from napari_pix2pix.config import ModelConfig, TrainConfig
    from napari_pix2pix.presets import apply_preset

    class _Data:
        in_channels = out_channels = 1

    settings = dict(generator="unet_128", ngf=16, crop=128)
    model, config = quality.configs("b2-ndf16-bilinear-l1", settings, _Data, 0, 300)
    pm = apply_preset("quick-cpu", ModelConfig(in_channels=1, out_channels=1))
    pt = apply_preset("quick-cpu", TrainConfig()).replace(steps=300)
    for name in ("generator", "ngf", "ndf", "norm", "dropout", "upsample", "discriminator", "discriminator_layers"):
        assert getattr(model, name) == getattr(pm, name), name
    for name in ("batch_size", "crop", "lr", "beta1", "beta2", "lambda_l1", "lambda_gan", "gan_mode", "ema",
                 "constant_steps", "augment"):
        assert getattr(config, name) == getattr(pt, name), name


def test_quality_select_best_reports_the_best_and_the_last_state(quality, tmp_path):
    report = quality.main(["--quick", "--quiet", "--tasks", "nuclei2d-m2i", "--seeds", "0",
                           "--recipes", "b2-ndf16-bilinear-l1-best"])
    run = report["runs"][0]
    assert run["best_step"] == 2 and set(run["last_metrics"]) >= {"PSNR", "Artefact (target floor)"}
    assert "Peak period" in run["metrics"]
