"""Precision modes and the no-host-sync step path.

* bf16 autocast (CPU) trains a tiny model as well as fp32 after the same steps on real nuclei
  data (validation L1 within a tolerance), and channels_last changes nothing but the layout.
* The CUDA step path that never synchronises with the host between log intervals is exercised
  on the CPU (forced): it gives the same weights as the per-step readout, and a non-finite loss
  makes the fused optimizer skip the update and the next readout raise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _helpers import nuclei_2d, tiny_model, tiny_train

from napari_pix2pix.config import DataConfig
from napari_pix2pix.data.sources import from_arrays
from napari_pix2pix.errors import TrainingError
from napari_pix2pix.training import Trainer


@pytest.fixture(scope="module")
def split():
    image, labels = nuclei_2d()
    return from_arrays(labels, image, DataConfig()).split(0.25)  # mask -> image


def _train(split, steps=30, **kw):
    train, val = split
    trainer = Trainer(tiny_model(generator="unet_32", ngf=16, ndf=16, discriminator_layers=2),
                      tiny_train(steps=steps, crop=64, batch_size=4, lr=1e-3, **kw), train, val_dataset=val)
    before = trainer.validate()
    trainer.run()
    return trainer, before, trainer.validate()


def test_bf16_trains_like_fp32(split):
    torch.set_num_threads(2)
    _, before, fp32 = _train(split)
    _, _, bf16 = _train(split, precision="bf16")
    print(f"val L1 start {before['L1']:.4f}; after 30 steps fp32 {fp32['L1']:.4f} bf16 {bf16['L1']:.4f}; "
          f"PSNR fp32 {fp32['PSNR']:.2f} bf16 {bf16['PSNR']:.2f}")
    assert fp32["L1"] < 0.4 * before["L1"] and bf16["L1"] < 0.4 * before["L1"]
    assert abs(bf16["L1"] - fp32["L1"]) <= 0.3 * fp32["L1"] + 0.02
    assert abs(bf16["PSNR"] - fp32["PSNR"]) <= 2.0


def test_channels_last_matches_fp32(split):
    """Same first step (losses) in either memory layout; Adam would amplify float noise later."""
    train, _ = split
    losses = []
    for cl in (False, True):
        trainer = Trainer(tiny_model(generator="unet_32", ngf=16, ndf=16), tiny_train(crop=64, channels_last=cl), train)
        losses.append(trainer.train_step())
        if cl:
            assert trainer.generator.down[1][0].weight.is_contiguous(memory_format=torch.channels_last)
    for k in losses[0]:
        assert losses[0][k] == pytest.approx(losses[1][k], rel=1e-4, abs=1e-5), k


def _weights(trainer):
    return [t.detach().clone() for t in (*trainer.generator.parameters(), *trainer.discriminator.parameters(),
                                         *trainer.generator.buffers(), *trainer.discriminator.buffers())]


@pytest.fixture
def deferred(monkeypatch):
    """The CUDA guard (no per-step host read; skips on the device via the grad scaler), forced on the CPU."""
    from napari_pix2pix.training import setup

    monkeypatch.setattr(setup, "deferred_guard", lambda device, config: True)


def test_deferred_readout_gives_the_same_weights(split, monkeypatch):
    image_set, _ = split
    synced = Trainer(tiny_model(), tiny_train(steps=5, log_every=4), image_set)
    synced.run()
    from napari_pix2pix.training import setup

    monkeypatch.setattr(setup, "deferred_guard", lambda device, config: True)
    deferred = Trainer(tiny_model(), tiny_train(steps=5, log_every=4), image_set)
    assert deferred.stepper.deferred and deferred.scaler.is_enabled()
    assert [deferred._readout_at(s) for s in range(1, 6)] == [True, False, False, True, True]
    finished = deferred.run()
    assert finished.step == 5
    assert all(torch.equal(x, y) for x, y in zip(_weights(synced), _weights(deferred)))
    assert [r["step"] for r in deferred.history] == [4, 5]
    assert all(np.isfinite(v) for r in deferred.history for v in r.values())


def test_deferred_nonfinite_loss_changes_nothing_and_raises(split, deferred, monkeypatch):
    image_set, _ = split
    trainer = Trainer(tiny_model(), tiny_train(steps=10, log_every=4), image_set)
    trainer.train_step(readout=True)
    good, rng = _weights(trainer), trainer.state.rng_state()
    real_batch = trainer._batch
    monkeypatch.setattr(trainer, "_batch", lambda: tuple(t * float("nan") for t in real_batch()))
    losses = trainer.train_step(readout=False)  # no host read: last readout's losses come back
    assert all(np.isfinite(v) for v in losses.values())
    assert all(torch.equal(x, y) for x, y in zip(good, _weights(trainer)))  # weights and BN buffers untouched
    monkeypatch.setattr(trainer, "_batch", real_batch)
    trainer.train_step(readout=False)  # a good batch after the bad one changes nothing either (sticky)
    assert all(torch.equal(x, y) for x, y in zip(good, _weights(trainer)))
    with pytest.raises(TrainingError, match="step 2"):
        trainer.train_step(readout=True)
    assert trainer.step == 1  # rolled back to the last good step, random state included
    assert all(torch.equal(rng[k], v) for k, v in trainer.state.rng_state().items())
