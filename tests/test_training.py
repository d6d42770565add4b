"""Training: learning on real data, the event stream, exact resume and atomic checkpoints."""

import os

import numpy as np
import pytest
import torch

from napari_pix2pix.checkpoint import load_checkpoint
from napari_pix2pix.config import DataConfig
from napari_pix2pix.data.sources import from_arrays
from napari_pix2pix.errors import ConfigError, DatasetError
from napari_pix2pix.training import (FinishedEvent, PreviewEvent, SavedEvent, StepEvent, Trainer,
                                     ValidationEvent)

from _helpers import nuclei_2d, tiny_model, tiny_train


@pytest.fixture(scope="module")
def nuclei():
    image, labels = nuclei_2d()
    return from_arrays(labels, image, DataConfig())  # mask -> image


def test_200_steps_lower_l1_on_real_nuclei(nuclei):
    """The issue's acceptance run: 64x64 crops, U-Net of depth 6 (unet_64), ngf 16, mask -> image."""
    torch.set_num_threads(2)
    train, val = nuclei.split(0.25)
    trainer = Trainer(tiny_model(generator="unet_64", ngf=16, ndf=16, discriminator_layers=3),
                      tiny_train(steps=200, crop=64, batch_size=4, validate_every=0), train, val_dataset=val)
    before = trainer.validate()["L1"]
    trainer.run()
    after = trainer.validate()["L1"]
    print(f"validation L1 (model units, range 2): {before:.4f} -> {after:.4f}")
    assert after < 0.5 * before


def test_event_stream(nuclei, tmp_path):
    train, val = nuclei.split(0.25)
    out = tmp_path / "m.safetensors"
    trainer = Trainer(tiny_model(), tiny_train(steps=4, preview_every=2, validate_every=2, checkpoint_every=2,
                                               checkpoint_dir=str(tmp_path / "ckpt")),
                      train, val_dataset=val, out=out)
    events = list(trainer.events())
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert set(steps[0].losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert len(previews) == 2 and previews[0].fake.shape == (1, 32, 32)
    assert previews[0].d_fake.shape == trainer.geometry.map_size(32)
    assert len([e for e in events if isinstance(e, ValidationEvent)]) == 2
    assert (tmp_path / "ckpt" / "last.safetensors").is_file() and (tmp_path / "ckpt" / "metrics.csv").is_file()
    assert any(isinstance(e, SavedEvent) and e.best for e in events)
    assert isinstance(events[-1], FinishedEvent) and events[-1].path == str(out) and not events[-1].stopped
    assert load_checkpoint(out).step == 4


def test_stop_ends_after_current_step_and_saves(nuclei, tmp_path):
    trainer = Trainer(tiny_model(), tiny_train(steps=100), nuclei, out=tmp_path / "m.safetensors")
    for event in trainer.events():
        if isinstance(event, StepEvent) and event.step == 3:
            trainer.stop()
    assert trainer.step == 3 and event.stopped
    assert load_checkpoint(tmp_path / "m.safetensors").step == 3


def _weights(trainer):
    return {**{f"G.{k}": v for k, v in trainer.generator.state_dict().items()},
            **{f"D.{k}": v for k, v in trainer.discriminator.state_dict().items()}}


def test_exact_resume(nuclei, tmp_path):
    """N steps, save, resume, M steps == N + M steps uninterrupted (dropout, jitter, BN, Adam)."""
    torch.use_deterministic_algorithms(True)
    try:
        model = tiny_model(generator="unet_32", dropout=True)
        cfg = tiny_train(steps=8, decay_steps=4)
        full = Trainer(model, cfg, nuclei)
        full.run()

        first = Trainer(model, cfg, nuclei, out=tmp_path / "half.safetensors")
        for event in first.events():
            if isinstance(event, StepEvent) and event.step == 5:
                first.stop()
        assert load_checkpoint(tmp_path / "half.safetensors").step == 5
        torch.manual_seed(1234)  # unrelated RNG use between runs must not matter
        resumed = Trainer(model, cfg, nuclei, resume=tmp_path / "half.safetensors")
        assert resumed.step == 5
        resumed.run()
        a, b = _weights(full), _weights(resumed)
        assert a.keys() == b.keys()
        diff = [k for k in a if not torch.equal(a[k], b[k])]
        assert not diff, f"weights differ after resume: {diff[:5]}"
        # and the test can fail: a resume from a different step does differ
        assert not torch.equal(_weights(first)["G.up.0.0.weight"], a["G.up.0.0.weight"])
    finally:
        torch.use_deterministic_algorithms(False)


def test_atomic_save_keeps_old_file(nuclei, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"
    trainer = Trainer(tiny_model(), tiny_train(steps=1), nuclei, out=out)
    trainer.run()
    before = out.read_bytes()

    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError):
        trainer.save(out)
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary file left behind


def test_bad_training_setups_are_explained(nuclei):
    with pytest.raises(DatasetError, match="channels"):
        Trainer(tiny_model(in_channels=3), tiny_train(), nuclei)
    with pytest.raises(ConfigError, match="multiple of 32"):
        Trainer(tiny_model(), tiny_train(crop=48), nuclei)


def test_l1_only_and_hinge_modes_run(nuclei):
    for cfg in (tiny_train(steps=2, lambda_gan=0.0), tiny_train(steps=2, gan_mode="hinge"),
                tiny_train(steps=2, gan_mode="lsgan")):
        trainer = Trainer(tiny_model(), cfg, nuclei)
        trainer.run()
        assert trainer.step == 2
        assert all(np.isfinite(v) for k, v in trainer.history[-1].items() if k != "step")


def test_resume_from_an_in_memory_checkpoint(nuclei):
    first = Trainer(tiny_model(), tiny_train(steps=3), nuclei)
    first.run()
    ckpt = first.checkpoint()
    # the checkpoint is a CPU copy, not a view of the live weights
    live = first.generator.state_dict()["up.0.0.weight"]
    assert ckpt.generator["up.0.0.weight"].data_ptr() != live.data_ptr()
    resumed = Trainer(tiny_model(), tiny_train(steps=5), nuclei, resume=ckpt)
    assert resumed.step == 3
    resumed.run()
    assert resumed.step == 5


def test_too_small_crop_for_the_discriminator_is_a_config_error(nuclei):
    with pytest.raises(ConfigError, match="too small for this discriminator"):
        Trainer(tiny_model(discriminator_layers=5), tiny_train(crop=32), nuclei)


def test_out_of_memory_in_training_is_explained_and_keeps_the_last_state(nuclei, tmp_path, monkeypatch):
    from napari_pix2pix.errors import TrainingError

    trainer = Trainer(tiny_model(), tiny_train(steps=10), nuclei, out=tmp_path / "m.safetensors")
    calls = {"n": 0}
    real_step = trainer.train_step

    def step(**kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(**kw)

    monkeypatch.setattr(trainer, "train_step", step)
    with pytest.raises(TrainingError, match="out of memory at step 3") as exc:
        trainer.run()
    assert "Fix:" in str(exc.value)
    assert load_checkpoint(tmp_path / "m.safetensors").step == 2


def test_last_step_is_always_validated(nuclei, tmp_path):
    train, val = nuclei.split(0.25)
    trainer = Trainer(tiny_model(), tiny_train(steps=5, validate_every=3, checkpoint_dir=str(tmp_path)),
                      train, val_dataset=val)
    steps = [e.step for e in trainer.events() if isinstance(e, ValidationEvent)]
    assert steps == [3, 5]
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + 2
    Trainer(tiny_model(), tiny_train(steps=3, validate_every=3, checkpoint_dir=str(tmp_path)),
            train, val_dataset=val).run()
    assert len((tmp_path / "metrics.csv").read_text().strip().splitlines()) == 2  # a new run starts a new table
