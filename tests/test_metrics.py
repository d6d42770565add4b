"""Validation metrics against their definitions on known inputs, and best-checkpoint selection."""

import csv
import math

import numpy as np
import pytest
import torch

from napari_pix2pix.metrics import (PSNR_CAP, BestTracker, append_csv, error_map, image_metrics,
                                    label_foreground, psnr, sharpness, ssim_map)


def _image(seed=0, shape=(2, 1, 48, 48)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1  # model space [-1, 1]


# ------------------------------------------------------------------------------- PSNR / SSIM
def test_identical_images_give_ssim_one_and_capped_psnr():
    x = _image()
    m = image_metrics(x, x.clone())
    assert m["L1"] == 0.0
    assert m["PSNR"] == PSNR_CAP and math.isfinite(m["PSNR"])
    assert m["SSIM"] == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(ssim_map(x, x), torch.ones_like(x), atol=1e-4)


@pytest.mark.parametrize("d", [0.02, 0.1, 0.5, 1.0])
def test_constant_offset_gives_its_psnr(d):
    """Offset d in model units is d/2 on the [0, 1] scale: PSNR = 10 log10(1 / (d/2)^2)."""
    x = _image() * 0.4  # room for the offset without leaving [-1, 1]
    m = image_metrics(x + d, x)
    assert m["PSNR"] == pytest.approx(10 * math.log10(1 / (d / 2) ** 2), abs=1e-3)
    assert m["L1"] == pytest.approx(d, rel=1e-5)


def test_gaussian_noise_psnr_matches_its_sigma():
    x = torch.zeros(1, 1, 256, 256)
    sigma = 0.1  # model units -> 0.05 on [0, 1]
    noisy = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    expected = 10 * math.log10(1 / (sigma / 2) ** 2)
    assert psnr(noisy, x) == pytest.approx(expected, abs=0.1)


def test_ssim_falls_with_noise_and_is_symmetric():
    x = _image(2, (1, 1, 64, 64))
    small = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    large = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    s_small, s_large = image_metrics(small, x)["SSIM"], image_metrics(large, x)["SSIM"]
    assert 1 > s_small > s_large > 0
    assert image_metrics(x, small)["SSIM"] == pytest.approx(s_small, abs=1e-6)
    assert ssim_map(small, x).shape == x.shape


def test_ssim_of_tiny_images_is_nan_not_an_error():
    x = _image(shape=(1, 1, 8, 8))
    assert math.isnan(image_metrics(x, x)["SSIM"])


# --------------------------------------------------------------------------------- Dice / IoU
def _mask(rows, cols, shape=(10, 10)):
    m = torch.full((1, 1) + shape, -1.0)
    m[..., rows[0]:rows[1], cols[0]:cols[1]] = 1.0
    return m


def test_dice_and_iou_on_known_masks():
    pred = _mask((0, 4), (0, 5))    # 20 px
    true = _mask((2, 6), (0, 5))    # 20 px, 10 shared
    m = image_metrics(pred, true, labels=True)
    assert m["Dice"] == pytest.approx(2 * 10 / 40)
    assert m["IoU"] == pytest.approx(10 / 30)
    same = image_metrics(true, true, labels=True)
    assert same["Dice"] == 1.0 and same["IoU"] == 1.0
    empty = torch.full((1, 1, 10, 10), -1.0)
    assert image_metrics(empty, empty, labels=True)["Dice"] == 1.0  # both empty: perfect agreement
    assert image_metrics(empty, true, labels=True)["Dice"] == 0.0
    assert "Dice" not in image_metrics(pred, true)


def test_soft_outputs_are_thresholded_at_zero():
    true = _mask((2, 6), (0, 5))
    soft = true * 0.3 + 0.05  # foreground 0.35, background -0.25
    m = image_metrics(soft, true, labels=True)
    assert m["Dice"] == 1.0 and m["IoU"] == 1.0


def test_label_foreground_of_other_encodings():
    # onehot, 3 classes: foreground where the argmax is not class 0
    y = torch.full((1, 3, 2, 2), -1.0)
    y[0, 0, 0, 0] = y[0, 1, 0, 1] = y[0, 2, 1, 0] = y[0, 0, 1, 1] = 1.0
    assert label_foreground(y, "onehot").tolist() == [[[False, True], [True, False]]]
    # scaled, ids 0..4 -> -1..1: id 1 is -0.5, foreground; id 0 is -1
    ids = torch.tensor([0.0, 1.0, 2.0, 4.0]).view(1, 1, 2, 2)
    assert label_foreground(ids / 4 * 2 - 1, "scaled", top=4).tolist() == [[[False, True], [True, True]]]
    m = image_metrics(ids / 4 * 2 - 1, ids / 4 * 2 - 1, labels=True, encoding="scaled", top=4)
    assert m["Dice"] == 1.0


# ------------------------------------------------------------------------ sharpness and maps
def test_sharpness_is_one_for_identical_and_below_one_when_blurred():
    import kornia

    x = _image(4, (1, 1, 64, 64))
    assert sharpness(x, x) == pytest.approx(1.0)
    blurred = kornia.filters.gaussian_blur2d(x, (7, 7), (2.0, 2.0))
    assert sharpness(blurred, x) < 0.2
    assert sharpness(x, blurred) > 5
    assert math.isnan(sharpness(x, torch.zeros_like(x)))  # flat target


def test_error_map_is_half_the_absolute_difference():
    a, b = _image(5), _image(6)
    e = error_map(a, b)
    assert e.shape == a.shape
    assert torch.allclose(e, (a - b).abs() / 2)
    assert float(e.mean()) == pytest.approx(image_metrics(a, b)["L1"] / 2, rel=1e-5)


# ------------------------------------------------------------------------------- selection
def test_best_tracker_picks_the_right_step_on_a_scripted_sequence():
    psnr_seq = [(100, 20.0), (200, 24.0), (300, float("nan")), (400, 23.0), (500, 24.0), (600, 25.5), (700, 25.0)]
    t = BestTracker("PSNR")
    improved = [t.update(step, {"PSNR": v}) for step, v in psnr_seq]
    assert improved == [True, True, False, False, False, True, False]
    assert (t.best, t.step) == (25.5, 600)

    t = BestTracker("L1")  # lower is better
    for step, v in [(1, 0.5), (2, 0.3), (3, 0.4), (4, 0.3), (5, 0.35)]:
        t.update(step, {"L1": v})
    assert (t.best, t.step) == (0.3, 2)  # a tie does not replace the earlier best

    t = BestTracker("Dice", best=0.8, step=10)  # resumed state
    assert not t.update(11, {"Dice": 0.7}) and not t.update(12, {"PSNR": 99.0})  # metric missing
    assert t.update(13, {"Dice": 0.81}) and t.step == 13


def test_append_csv_writes_the_header_once(tmp_path):
    path = tmp_path / "sub" / "metrics.csv"
    for step in (1, 2, 3):
        append_csv(path, {"step": step, "L1": 0.1 * step, "PSNR": 20 + step})
    rows = list(csv.DictReader(open(path)))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == ["step", "L1", "PSNR"]
    assert float(rows[2]["PSNR"]) == 23


def test_metrics_accept_numpy_converted_batches():
    a = torch.from_numpy(np.linspace(-1, 1, 2 * 32 * 32, dtype=np.float32).reshape(2, 1, 32, 32))
    m = image_metrics(a, a.flip(-1))
    assert set(m) == {"L1", "PSNR", "SSIM", "Std ratio"} and all(math.isfinite(v) for v in m.values())


# ------------------------------------------------------------------ validation in the Trainer
from napari_pix2pix.checkpoint import load_checkpoint  # noqa: E402
from napari_pix2pix.config import DataConfig  # noqa: E402
from napari_pix2pix.data.sources import from_arrays  # noqa: E402
from napari_pix2pix.training import SavedEvent, StepEvent, Trainer, ValidationEvent  # noqa: E402

from _helpers import nuclei_2d, tiny_model, tiny_train  # noqa: E402


@pytest.fixture(scope="module")
def split():
    torch.set_num_threads(1)
    image, labels = nuclei_2d()
    return from_arrays(labels[:128, :128], image[:128, :128], DataConfig()).split(0.25)


def _script(values, metric="PSNR"):
    seq = iter([{"L1": 1.0 / (i + 1), metric: v, "SSIM": 0.5} if metric != "L1" else {"L1": v, "PSNR": 20.0}
                for i, v in enumerate(values)])
    return lambda self: next(seq)


def test_trainer_keeps_the_best_checkpoint_of_a_scripted_sequence(split, tmp_path, monkeypatch):
    train, val = split
    psnrs = [20.0, 22.0, 21.0, 23.5, 23.0, 22.0]
    monkeypatch.setattr(Trainer, "validate", _script(psnrs))
    ckpt = tmp_path / "ckpt"
    trainer = Trainer(tiny_model(), tiny_train(steps=6, validate_every=1, checkpoint_dir=str(ckpt)), train,
                      val_dataset=val, out=tmp_path / "m.safetensors")
    snapshot = {}
    events = []
    for event in trainer.events():
        events.append(event)
        if isinstance(event, SavedEvent) and event.best:
            snapshot[event.step] = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    assert [e.metrics["PSNR"] for e in events if isinstance(e, ValidationEvent)] == psnrs
    assert [e.step for e in events if isinstance(e, SavedEvent) and e.best] == [1, 2, 4]

    best = load_checkpoint(ckpt / "best.safetensors")
    assert best.step == 4 and best.metrics["PSNR"] == 23.5
    assert best.metrics["best"] == {"metric": "PSNR", "value": 23.5, "step": 4}
    assert all(torch.equal(best.generator[k], v) for k, v in snapshot[4].items())  # the step-4 weights
    last = load_checkpoint(ckpt / "last.safetensors")
    assert last.step == 6 and last.metrics["PSNR"] == 22.0 and last.metrics["best"]["step"] == 4
    assert load_checkpoint(tmp_path / "m.safetensors").metrics["best"]["value"] == 23.5  # metadata of `out`
    rows = list(csv.DictReader(open(ckpt / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [float(r["PSNR"]) for r in rows] == psnrs
    assert list(rows[0]) == ["step", "L1", "PSNR", "SSIM"]
    assert [h["val_PSNR"] for h in trainer.history if "val_PSNR" in h] == psnrs

    # resuming keeps the record: lower values do not replace best.safetensors, a higher one does
    monkeypatch.setattr(Trainer, "validate", _script([23.0, 24.0]))
    resumed = Trainer(tiny_model(), tiny_train(steps=8, validate_every=1, checkpoint_dir=str(ckpt)), train,
                      val_dataset=val, resume=ckpt / "last.safetensors")
    assert (resumed.best.best, resumed.best.step) == (23.5, 4)
    saved = [e.step for e in resumed.events() if isinstance(e, SavedEvent) and e.best]
    assert saved == [8] and load_checkpoint(ckpt / "best.safetensors").step == 8
    assert len(list(csv.DictReader(open(ckpt / "metrics.csv")))) == 8


def test_lower_is_better_metric_and_files_beside_out(split, tmp_path, monkeypatch):
    train, val = split
    monkeypatch.setattr(Trainer, "validate", _script([0.30, 0.20, 0.25], metric="L1"))
    out = tmp_path / "model.safetensors"
    trainer = Trainer(tiny_model(), tiny_train(steps=6, validate_every=2, best_metric="L1"), train,
                      val_dataset=val, out=out)
    trainer.run()
    # without checkpoint_dir the side files sit beside `out`
    best = load_checkpoint(tmp_path / "model.best.safetensors")
    assert best.step == 4 and best.metrics["L1"] == 0.20
    rows = list(csv.DictReader(open(tmp_path / "model.metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]


def test_real_validation_on_labels_reports_dice_and_iou(tmp_path):
    torch.set_num_threads(1)
    image, labels = nuclei_2d()
    train, val = from_arrays(image[:128, :128], labels[:128, :128], DataConfig()).split(0.25)  # image -> mask
    assert train.b_is_labels
    trainer = Trainer(tiny_model(), tiny_train(steps=2, validate_every=1, checkpoint_dir=str(tmp_path)), train,
                      val_dataset=val)
    events = [e for e in trainer.events() if isinstance(e, (ValidationEvent, StepEvent))]
    metrics = [e.metrics for e in events if isinstance(e, ValidationEvent)]
    assert len(metrics) == 2 and set(metrics[0]) == {"L1", "PSNR", "SSIM", "Std ratio", "Dice", "IoU"}
    assert all(0 <= m["IoU"] <= m["Dice"] <= 1 for m in metrics)
    # the event's numbers are the definitions applied to the validation patches
    trainer.generator.eval()
    with torch.no_grad():
        fake = trainer.generator(trainer.val_a)
    assert image_metrics(fake, trainer.val_b, labels=True) == pytest.approx(metrics[-1], rel=1e-5)
    header = next(csv.reader(open(tmp_path / "metrics.csv")))
    assert header == ["step", "L1", "PSNR", "SSIM", "Std ratio", "Dice", "IoU"]


# ------------------------------------------------------------------ periodic artefacts
def _smooth_image(seed: int, shape=(96, 128)):
    import numpy as np
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.normal(size=shape), 2) + 0.05 * rng.normal(size=shape)


def test_artefact_score_flags_a_lattice_and_passes_a_clean_image():
    import numpy as np

    from napari_pix2pix.metrics import artefact_ratio, artefact_score

    target, clean = _smooth_image(0), _smooth_image(1)
    yy, xx = np.mgrid[:96, :128]
    lattice = clean + 0.5 * clean.std() * np.sin(2 * np.pi * (xx + yy) / 8)  # diagonal, period 8 px
    assert artefact_ratio(clean, target) < 2
    assert artefact_ratio(lattice, target) > 20
    assert artefact_score(lattice) > 20 * artefact_score(clean)
    # torch tensors [B, C, H, W] give the same score as the numpy plane
    t = torch.from_numpy(lattice[None, None].astype(np.float32))
    assert artefact_score(t) == pytest.approx(artefact_score(lattice.astype(np.float32)), rel=1e-3)
    assert artefact_score(np.zeros((32, 32))) == 0.0  # flat: no peak


def test_pearson_and_std_ratio():
    import numpy as np

    from napari_pix2pix.metrics import pearson, std_ratio

    x = _smooth_image(0)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert math.isnan(pearson(np.zeros_like(x), x))
    t = torch.from_numpy(x).float()
    assert std_ratio(0.5 * t, t) == pytest.approx(0.5, rel=1e-5)
    assert "Std ratio" in image_metrics(t[None, None], t[None, None])


def test_collapse_guard_warns_once_with_a_fix(caplog):
    import logging

    from napari_pix2pix.metrics import CollapseGuard, collapse_warning
    from napari_pix2pix.training import StepEvent, ValidationEvent

    assert collapse_warning({"Std ratio": 0.5}) is None
    assert collapse_warning({"PSNR": 20.0}) is None  # nothing to judge
    message = collapse_warning({"Std ratio": 0.001})
    assert "Fix:" in message and "batch_size" in message
    shown = []
    guard = CollapseGuard(notify=shown.append)
    with caplog.at_level(logging.WARNING, logger="napari_pix2pix"):
        assert guard(StepEvent(1, 10, {}, 1e-4, 0.1)) is None
        assert guard(ValidationEvent(5, {"Std ratio": 0.8})) is None
        assert guard(ValidationEvent(10, {"Std ratio": 0.002})) is not None
        assert guard(ValidationEvent(15, {"Std ratio": 0.003})) is not None
    assert len([r for r in caplog.records if "nearly constant" in r.getMessage()]) == 1
    assert len(shown) == 1 and guard.step == 15


def test_collapse_guard_sees_a_constant_generator():
    from napari_pix2pix.metrics import collapse_warning

    target = torch.rand(2, 1, 32, 32) * 2 - 1
    flat = torch.full_like(target, 0.3)
    assert collapse_warning(image_metrics(flat, target)) is not None
    assert collapse_warning(image_metrics(target * 0.9, target)) is None


def test_artefact_peak_ignores_smoothness_and_still_flags_a_lattice():
    """A noise-free output of a noisy target: its own ring medians are tiny, so artefact_ratio
    explodes; artefact_peak (floor = the noisier image's ring median) calls it clean, and still
    flags a diagonal lattice, with its period."""
    import numpy as np

    from napari_pix2pix.metrics import artefact_peak, artefact_ratio

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :128]
    smooth = np.cos(xx / 20.0) + np.sin(yy / 15.0)
    target = smooth + 0.3 * rng.standard_normal(smooth.shape)
    assert artefact_ratio(smooth, target) > 100
    ratio, _ = artefact_peak(smooth, target)
    assert ratio < 2
    lattice = smooth + 0.2 * np.sin(2 * np.pi * (xx + yy) / 16)  # period 16 / sqrt(2) across the stripes
    ratio, period = artefact_peak(lattice, target)
    assert ratio > 5 and period == pytest.approx(16 / np.sqrt(2), rel=0.1)
    assert np.isnan(artefact_peak(smooth, np.zeros_like(smooth))[0])  # flat target: undefined
