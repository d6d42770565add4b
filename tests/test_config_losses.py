import math

import pytest
import torch

from napari_pix2pix.config import ModelConfig, TileConfig, TrainConfig
from napari_pix2pix.errors import ConfigError
from napari_pix2pix.losses import discriminator_loss, gan_loss, generator_loss


def test_defaults_are_the_papers():
    t = TrainConfig()
    assert (t.lr, t.beta1, t.beta2, t.lambda_l1, t.batch_size, t.gan_mode) == (2e-4, 0.5, 0.999, 100.0, 1, "vanilla")
    assert math.isclose(t.augment.jitter_scale * 256, 286)
    assert TileConfig().mode == "eval"


def test_learning_rate_constant_then_linear_decay():
    t = TrainConfig(steps=200, decay_steps=100)
    assert t.lr_at(0) == t.lr_at(99) == 2e-4
    assert t.lr_at(100) < 2e-4 and t.lr_at(150) < t.lr_at(120)
    assert 0 < t.lr_at(199) < 1e-5
    assert TrainConfig(steps=10).constant_steps == 5


def test_config_round_trip_and_validation():
    t = TrainConfig(steps=7, seed=3)
    assert TrainConfig.from_dict(t.to_dict()) == t
    m = ModelConfig(generator="unet_64", in_channels=1)
    assert ModelConfig.from_dict({**m.to_dict(), "unknown_future_field": 1}) == m
    with pytest.raises(ConfigError, match="generator"):
        ModelConfig(generator="unet_100")
    with pytest.raises(ConfigError, match="Fix:"):
        TrainConfig(gan_mode="wgan")
    with pytest.raises(ConfigError, match="overlap"):
        TileConfig(tile=64, overlap=40)


def test_gan_losses():
    x = torch.tensor([[[[2.0, -1.0]]]])
    assert torch.isclose(gan_loss(x, True), torch.nn.functional.softplus(-x).mean())
    assert torch.isclose(gan_loss(x, True, "lsgan"), ((x - 1) ** 2).mean())
    assert torch.isclose(gan_loss(x, False, "hinge"), torch.relu(1 + x).mean())
    assert torch.isclose(gan_loss(x, True, "hinge", for_discriminator=False), -x.mean())


def test_discriminator_loss_is_halved_and_l1_weighted():
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    total, r, f = discriminator_loss(real, fake)
    assert torch.isclose(total, 0.5 * (r + f))
    a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    total, g_gan, g_l1 = generator_loss(fake[:1], a, b, lambda_l1=100)
    assert torch.isclose(g_l1, torch.tensor(50.0)) and torch.isclose(total, g_gan + g_l1)


def test_schema_checks_every_config():
    """Every config validates against its schema: cuda:N is a device, nan/inf are refused, and the
    refusal names the setting by its schema name."""
    import math

    import pytest

    from napari_pix2pix.config import AugmentConfig, TileConfig, TrainConfig
    from napari_pix2pix.errors import ConfigError
    from napari_pix2pix.schema import options_of

    assert TrainConfig(device="cuda:1").device == "cuda:1"
    assert TileConfig(device="cuda:0").device == "cuda:0"
    for bad in (dict(lr=math.nan), dict(lambda_l1=math.inf), dict(device="cuda:x"), dict(steps=0)):
        with pytest.raises(ConfigError) as info:
            TrainConfig(**bad)
        assert info.value.setting == next(iter(bad))
    assert {o.name for o in options_of(AugmentConfig, "cli")} >= {"jitter", "flip", "rot90"}
    for cls in (TrainConfig, TileConfig, AugmentConfig):
        for opt in options_of(cls):
            assert opt.help and opt.level in ("basic", "advanced")


def test_presets_are_schema_overrides_and_follow_the_device():
    from napari_pix2pix.config import AugmentConfig, ModelConfig, TrainConfig
    from napari_pix2pix.presets import PRESETS, apply_preset, default_preset
    from napari_pix2pix.schema import check_value, options_of

    options = {o.name: o for cls in (ModelConfig, TrainConfig, AugmentConfig) for o in options_of(cls)}
    for name, preset in PRESETS.items():
        assert preset.help
        for key, value in preset.overrides.items():
            assert key in options, (name, key)
            check_value(options[key], value)
        model, train = apply_preset(name, ModelConfig()), apply_preset(name, TrainConfig())
        for key, value in preset.overrides.items():
            holder = model if hasattr(model, key) else train if hasattr(train, key) else train.augment
            assert getattr(holder, key) == value
    quick = apply_preset("quick-cpu", ModelConfig())
    assert (quick.generator, quick.ngf, quick.ndf) == ("unet_128", 16, 16)
    paper = apply_preset("paper", TrainConfig(crop=64, batch_size=4))
    assert (paper.crop, paper.batch_size, paper.lr) == (256, 1, 2e-4)
    assert default_preset("cpu") == "quick-cpu" and default_preset("cuda:1") == "paper"


def test_estimate_duration_times_real_steps_and_keeps_the_rng(one_torch_thread):
    import random

    import numpy as np
    import torch

    from _helpers import tiny_model, tiny_train
    from napari_pix2pix.presets import estimate_duration, format_duration

    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    est = estimate_duration(tiny_model(), tiny_train(crop=32), device="cpu", steps=500, timing_steps=1)
    assert est.seconds_per_step > 0 and est.steps == 500 and est.seconds == est.seconds_per_step * 500
    assert "500 steps" in est.text and est.device == "cpu"
    assert torch.equal(torch.random.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all() and random.getstate() == before[2]
    assert format_duration(42) == "42 s" and format_duration(200) == "3 min 20 s"
    assert format_duration(7500) == "2 h 05 min"
