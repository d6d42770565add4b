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


# ------------------------------------------------------------------ the lean step, the guard
def _plain_step(G, D, opt_g, opt_d, a, b):
    """The straightforward pix2pix step (the paper's order), for comparison with the lean one."""
    import torch.nn.functional as F

    fake = G(a)
    fl, rl = D(torch.cat([a, fake.detach()], 1)), D(torch.cat([a, b], 1))
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(fl, torch.zeros_like(fl))
                    + F.binary_cross_entropy_with_logits(rl, torch.ones_like(rl)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    D.requires_grad_(False)
    fl = D(torch.cat([a, fake], 1))
    loss_g = F.binary_cross_entropy_with_logits(fl, torch.ones_like(fl)) + 100 * F.l1_loss(fake, b)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)


def test_lean_step_gives_the_weights_of_a_straightforward_step(nuclei, one_torch_thread):
    import copy

    trainer = Trainer(tiny_model(), tiny_train(steps=4, decay_steps=0, log_every=2), nuclei)
    G, D = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    # the same Adam kernel as ours (for-loop Adam turns rounding in near-zero gradients into
    # differences of up to a learning rate per step); what is compared is the step around it
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
    make_batch = trainer._batch
    for _ in range(4):
        a, b = make_batch()
        rng = torch.get_rng_state()  # dropout draws the same numbers in both steps
        trainer._batch = lambda: (a, b)
        trainer.train_step(readout=False)
        torch.set_rng_state(rng)
        _plain_step(G, D, opt_g, opt_d, a, b)
    for mine, plain in ((trainer.generator, G), (trainer.discriminator, D)):
        for (k, x), y in zip(mine.state_dict().items(), plain.state_dict().values()):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=k)


def test_a_nonfinite_step_changes_nothing_in_memory_or_on_disk(tmp_path):
    from napari_pix2pix.errors import TrainingError

    rng = np.random.default_rng(1)
    a = rng.random((48, 48)).astype(np.float32)
    trainer = Trainer(tiny_model(), tiny_train(steps=6, checkpoint_every=2, checkpoint_dir=str(tmp_path / "ck")),
                      from_arrays(a, 1 - a), out=tmp_path / "m.safetensors")
    last = tmp_path / "ck" / "last.safetensors"
    real = trainer.sampler.sample
    events = trainer.events()
    for event in events:
        if isinstance(event, SavedEvent) and event.step == 2:
            break
    on_disk = last.read_bytes()
    state = {k: v.clone() for net in (trainer.generator, trainer.discriminator) for k, v in net.state_dict().items()}
    moments = [v.clone() for st in trainer.opt_d.state.values() for v in st.values()]

    def poisoned(generator):
        x, y = real(generator)
        return x * float("nan"), y

    trainer.sampler.sample = poisoned
    with pytest.raises(TrainingError, match="discriminator loss.*step 3") as err:
        next(events)
    assert "Fix:" in str(err.value)
    assert trainer.step == 2
    now = {k: v for net in (trainer.generator, trainer.discriminator) for k, v in net.state_dict().items()}
    assert all(torch.equal(state[k], now[k]) for k in state)  # weights and batch-norm buffers
    assert all(torch.equal(x, y) for x, y in zip(moments, [v for st in trainer.opt_d.state.values()
                                                            for v in st.values()]))
    assert last.read_bytes() == on_disk  # the stop re-saved the same last good state, byte for byte
    assert load_checkpoint(tmp_path / "m.safetensors").step == 2


def test_a_bad_generator_loss_undoes_the_discriminator_update(nuclei, monkeypatch):
    """G's loss is computed through the updated D: a bad G loss must put D back as well."""
    from napari_pix2pix.errors import TrainingError
    from napari_pix2pix.training import step as step_module

    trainer = Trainer(tiny_model(), tiny_train(steps=4), nuclei)
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    real = step_module.generator_loss

    def bad_loss(*args, **kw):
        loss, g_gan, g_l1 = real(*args, **kw)
        return loss * float("inf"), g_gan, g_l1

    monkeypatch.setattr(step_module, "generator_loss", bad_loss)
    with pytest.raises(TrainingError, match="generator loss"):
        trainer.train_step()
    assert all(torch.equal(before[k], v) for k, v in trainer.discriminator.state_dict().items())


def test_saving_refuses_nonfinite_tensors(nuclei, tmp_path):
    from napari_pix2pix.errors import TrainingError

    trainer = Trainer(tiny_model(), tiny_train(steps=1), nuclei)
    with torch.no_grad():
        next(trainer.discriminator.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(TrainingError, match="discriminator/"):
        trainer.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_time_limit_stops_validates_and_saves(nuclei, tmp_path):
    train, val = nuclei.split(0.25)
    trainer = Trainer(tiny_model(), tiny_train(steps=1000, time_limit=1e-6, validate_every=500), train,
                      val_dataset=val, out=tmp_path / "m.safetensors")
    events = list(trainer.events())
    finished = events[-1]
    assert isinstance(finished, FinishedEvent) and finished.reason == "time_limit" and finished.step == 1
    assert [e.step for e in events if isinstance(e, ValidationEvent)] == [1]
    assert load_checkpoint(tmp_path / "m.safetensors").step == 1


def test_ema_is_validated_and_saved_as_the_model_and_resume_is_exact(nuclei, tmp_path):
    cfg = tiny_train(steps=4, ema=True, ema_decay=0.5)
    full = Trainer(tiny_model(dropout=False), cfg, nuclei, out=tmp_path / "full.safetensors")
    full.run()
    ckpt = load_checkpoint(tmp_path / "full.safetensors")
    ema = full.state.ema.module.state_dict()
    assert all(torch.equal(ckpt.generator[k], v) for k, v in ema.items())  # the model is the average
    raw = full.generator.state_dict()
    assert all(torch.equal(ckpt.generator_raw[k], v) for k, v in raw.items())
    assert not torch.equal(ckpt.generator["up.0.0.weight"], ckpt.generator_raw["up.0.0.weight"])

    half = Trainer(tiny_model(dropout=False), cfg, nuclei, out=tmp_path / "half.safetensors")
    for event in half.events():
        if isinstance(event, StepEvent) and event.step == 2:
            half.stop()
    resumed = Trainer(tiny_model(dropout=False), cfg, nuclei, resume=tmp_path / "half.safetensors")
    resumed.run()
    for k, v in ema.items():
        assert torch.equal(resumed.state.ema.module.state_dict()[k], v), k


def test_select_best_saves_the_best_validated_model(nuclei, tmp_path):
    train, val = nuclei.split(0.25)
    trainer = Trainer(tiny_model(), tiny_train(steps=4, validate_every=1, select_best=True, best_metric="L1"),
                      train, val_dataset=val, out=tmp_path / "m.safetensors")
    values = {e.step: e.metrics["L1"] for e in trainer.events() if isinstance(e, ValidationEvent)}
    best_step = min(values, key=values.get)
    assert load_checkpoint(tmp_path / "m.safetensors").step == best_step
    rows = (tmp_path / "m.metrics.csv").read_text().splitlines()
    assert "PSNR_data_units_dB" in rows[0].split(",") and "PSNR" in rows[0].split(",")
