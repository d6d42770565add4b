"""Durability: atomic checkpoints, SIGKILL during training, exact resume after a kill,
non-finite losses (stop / skip) and out-of-memory retries during inference."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_pix2pix import cli
from napari_pix2pix.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from napari_pix2pix.config import ModelConfig, TileConfig, TrainConfig
from napari_pix2pix.data import from_arrays
from napari_pix2pix.errors import InputError, Pix2PixError, TrainingError
from napari_pix2pix.inference import translate
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.models import build_generator
from napari_pix2pix.training import StepEvent, Trainer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(generator="unet_32", ngf=8, ndf=8, discriminator_layers=2)


def _ckpt(seed: int) -> Checkpoint:
    torch.manual_seed(seed)
    config = ModelConfig(**TINY, in_channels=1, out_channels=1)
    return Checkpoint(model=config, step=seed, generator=build_generator(config).state_dict())


# ------------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch, error):
    import safetensors.torch

    path = save_checkpoint(tmp_path / "m.safetensors", _ckpt(1))
    before = path.read_bytes()
    real = safetensors.torch.save_file

    def half_then_fail(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:  # leave a half-written file behind, then fail
            fh.truncate(os.path.getsize(filename) // 2)
        raise error

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    with pytest.raises(type(error)):
        save_checkpoint(path, _ckpt(2), fallback=False)  # the rescue copy is tested in test_adversarial
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_fsyncs_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    save_checkpoint(tmp_path / "m.safetensors", _ckpt(1))
    assert events[:2] == ["fsync", "replace"]


# ------------------------------------------------------------------- SIGKILL during training
def _pair_files(folder: Path) -> tuple[Path, Path]:
    import tifffile

    rng = np.random.default_rng(0)
    a = (rng.random((64, 64)) * 255).astype(np.uint8)
    tifffile.imwrite(folder / "A.tif", a)
    tifffile.imwrite(folder / "B.tif", (255 - a).astype(np.uint8))
    return folder / "A.tif", folder / "B.tif"


def _train_args(a: Path, b: Path, out: Path, ckdir: Path) -> list[str]:
    return ["train", "--source", str(a), "--target", str(b), "--out", str(out), "--steps", "100000",
            "--checkpoint-every", "5", "--checkpoint-dir", str(ckdir), "--generator", "unet_32", "--ngf", "8",
            "--ndf", "8", "--crop", "32", "--discriminator-layers", "2", "--quiet",
            "--validation", "0"]  # resumed below on the whole pair: train on the whole pair here too


def _start(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    a, b = tmp_path / "A.tif", tmp_path / "B.tif"
    ckdir = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-m", "napari_pix2pix",
                             *_train_args(a, b, tmp_path / f"{name}.safetensors", ckdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # the same threads as this process
    return proc, ckdir / "last.safetensors"


def _kill_after_first_checkpoint(proc: subprocess.Popen, last: Path, delay: float) -> None:
    try:
        deadline = time.monotonic() + 90
        while not last.exists():
            if proc.poll() is not None:
                pytest.fail(f"training exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 90 s")
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_loses_at_most_one_interval_and_resume_is_exact(tmp_path):
    """Three training processes, each killed at a random moment after its first checkpoint."""
    _pair_files(tmp_path)
    rnd = random.Random(7)
    runs = [_start(tmp_path, f"run{i}") for i in range(3)]  # started together: startup dominates
    for proc, last in runs:
        _kill_after_first_checkpoint(proc, last, rnd.uniform(0.0, 0.6))
    killed = []
    for _, last in runs:
        ckpt = load_checkpoint(last)  # never half a file
        assert ckpt.step > 0 and ckpt.step % 5 == 0
        assert ckpt.optimizer_g is not None and "torch" in ckpt.rng
        assert all(torch.isfinite(v).all() for v in ckpt.generator.values() if v.is_floating_point())
        killed.append((ckpt.step, last, ckpt))

    # resume a killed run for 3 steps == the same number of steps uninterrupted (the shortest run)
    _, last, ckpt = min(killed, key=lambda item: item[0])
    parser = cli.build_parser()
    args = parser.parse_args(_train_args(tmp_path / "A.tif", tmp_path / "B.tif", tmp_path / "m.safetensors",
                                         tmp_path / "unused"))
    dataset = cli.load_dataset(args, parser)
    config = ckpt.training.replace(checkpoint_every=0, checkpoint_dir=None)
    resumed = Trainer(ckpt.model, config, dataset, resume=last)
    assert resumed.step == ckpt.step
    for _ in range(3):
        resumed.train_step()
    straight = Trainer(ckpt.model, config, dataset)
    for _ in range(ckpt.step + 3):
        straight.train_step()
    assert resumed.step == straight.step == ckpt.step + 3
    for key, value in straight.generator.state_dict().items():
        assert torch.equal(resumed.generator.state_dict()[key], value), key
    for key, value in straight.discriminator.state_dict().items():
        assert torch.equal(resumed.discriminator.state_dict()[key], value), key


# ------------------------------------------------------------------------- non-finite loss
def _nan_trainer(tmp_path: Path, policy: str, bad_step: int, steps: int = 6) -> Trainer:
    rng = np.random.default_rng(1)
    a = rng.random((48, 48)).astype(np.float32)
    dataset = from_arrays(a, 1 - a)
    config = TrainConfig(steps=steps, crop=32, batch_size=2, seed=0, device="cpu", preview_every=0, log_every=1,
                         nan_policy=policy, checkpoint_every=2, checkpoint_dir=str(tmp_path / "ck"))
    trainer = Trainer(ModelConfig(**TINY, norm="batch", in_channels=1, out_channels=1), config, dataset,
                      out=tmp_path / "m.safetensors")
    real, calls = trainer.sampler.sample, []

    def sample(generator):
        a, b = real(generator)
        calls.append(1)
        if len(calls) == bad_step:
            a = a.clone()
            a[0, 0, 3, 3] = float("nan")
        return a, b

    trainer.sampler.sample = sample
    return trainer


def _all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_nan_stop_names_the_step_and_keeps_finite_weights(tmp_path):
    trainer = _nan_trainer(tmp_path, "stop", bad_step=4)
    with pytest.raises(TrainingError) as err:
        for _ in trainer.events():
            pass
    text = str(err.value)
    assert "step 4" in text and "Fix:" in text and "nan_policy" in text
    for path in (tmp_path / "m.safetensors", tmp_path / "ck" / "last.safetensors"):
        ckpt = load_checkpoint(path)
        assert ckpt.step == 3
        assert _all_finite(ckpt.generator) and _all_finite(ckpt.discriminator)  # incl. batch-norm statistics
    # the saved model still translates to finite values
    model = Pix2PixModel.load(tmp_path / "m.safetensors")
    assert np.isfinite(translate(model, np.zeros((40, 40), np.float32), output_dtype="float32")).all()


def test_nan_skip_skips_the_batch_and_continues(tmp_path):
    trainer = _nan_trainer(tmp_path, "skip", bad_step=3)
    events = list(trainer.events())
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert sum("skipped" in e.losses for e in steps) == 1
    assert trainer.step == 6
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.step == 6 and _all_finite(ckpt.generator) and _all_finite(ckpt.discriminator)


# --------------------------------------------------------------------- out of memory
class _Limited(torch.nn.Module):
    """Wraps a generator; batches of more than ``limit`` pixels raise an out-of-memory error."""

    def __init__(self, inner, limit: int, error):
        super().__init__()
        self.inner, self.limit, self.error, self.sizes = inner, limit, error, []
        self.size_multiple = inner.size_multiple

    def forward(self, x):
        pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        self.sizes.append(tuple(x.shape))
        if pixels > self.limit:
            raise self.error
        return self.inner(x)


def _tiny_model() -> Pix2PixModel:
    return Pix2PixModel.from_checkpoint(_ckpt(3))


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB"),
                                   RuntimeError("MPS backend out of memory")],
                         ids=["OutOfMemoryError", "cpu-allocator", "runtime-oom"])
def test_oom_retries_with_smaller_tiles(error):
    model = _tiny_model()
    image = np.random.default_rng(0).random((256, 256)).astype(np.float32)
    expected = translate(model, image, config=TileConfig(tile=64, overlap=8, batch_size=1), output_dtype="float32")
    wrapper = _Limited(model.generator, limit=64 * 64, error=error)
    model.generator = wrapper
    out = translate(model, image, config=TileConfig(tile=0, overlap=8, batch_size=1), output_dtype="float32")
    assert out.shape == image.shape and np.isfinite(out).all()
    assert wrapper.sizes[0][-2:] == (256, 256) and wrapper.sizes[-1][-2:] == (64, 64)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_oom_fails_with_advice_when_tiles_cannot_shrink():
    model = _tiny_model()
    model.generator = _Limited(model.generator, limit=16 * 16, error=torch.OutOfMemoryError("out of memory"))
    with pytest.raises(Pix2PixError) as err:
        translate(model, np.zeros((256, 256), np.float32), config=TileConfig(tile=256, overlap=8, batch_size=1))
    assert isinstance(err.value, InputError)
    text = str(err.value)
    assert "out of memory" in text and "Fix:" in text and "smaller tiles" in text


def test_other_errors_are_not_retried():
    model = _tiny_model()
    model.generator = _Limited(model.generator, limit=0, error=RuntimeError("something else broke"))
    with pytest.raises(RuntimeError, match="something else"):
        translate(model, np.zeros((64, 64), np.float32), config=TileConfig(tile=0))
    assert len(model.generator.sizes) == 1


def test_written_files_follow_the_umask_not_owner_only(tmp_path):
    import os

    import numpy as np

    from napari_pix2pix.io import write_image
    from napari_pix2pix.paths import atomic_write

    old = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "a.bin", lambda tmp: open(tmp, "wb").write(b"x"))
        q = write_image(tmp_path / "b.tif", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644 and (q.stat().st_mode & 0o777) == 0o644
