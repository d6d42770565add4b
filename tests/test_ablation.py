"""benchmarks/ablation.py runs end to end in its reduced (--quick) mode."""

import importlib.util
import json

import numpy as np
import pytest

from napari_pix2pix.io import read_image

from _helpers import REPO


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation_script", REPO / "benchmarks" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
