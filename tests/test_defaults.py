"""The defaults chosen by the quality benchmark (benchmarks/QUALITY.md), pinned through the
schema so that changing one is a deliberate act. Quality goals live in the benchmark, never
here: these tests only say what the defaults are."""

import pytest

from napari_pix2pix.config import UPSAMPLE_CHOICES, ModelConfig, TileConfig, TrainConfig
from napari_pix2pix.schema import get_option, options_of


def test_upsample_is_a_schema_option_with_every_variant():
    opt = get_option(ModelConfig, "upsample")
    assert set(opt.choices) == set(UPSAMPLE_CHOICES) == {"transposed", "bilinear", "nearest"}
    assert "upsample" in [o.name for o in options_of(ModelConfig, "cli")]
    assert opt.help


def test_chosen_model_defaults():
    m = ModelConfig()
    assert m.upsample == get_option(ModelConfig, "upsample").default == "bilinear"  # QUALITY.md: no lattice
    assert m.ndf == m.ngf  # the discriminator as wide as the generator (presets keep them equal)
    assert m.norm == "batch" and m.dropout is True  # with batch >= 2, batch norm is kept (see QUALITY.md)
    assert (m.discriminator, m.discriminator_layers) == ("patch", 3)


def test_chosen_training_defaults():
    t = TrainConfig()
    assert t.batch_size == 2  # batch 1 + batch norm costs 2-4 dB and collapses resize-conv (QUALITY.md)
    assert (t.lr, t.beta1, t.beta2, t.lambda_l1, t.lambda_gan) == (2e-4, 0.5, 0.999, 100.0, 1.0)
    assert t.decay_steps is None and t.constant_steps == t.steps // 2  # linear decay over the 2nd half
    assert t.augment.jitter and t.augment.flip
    assert TileConfig().mode == "eval"


def test_old_files_and_reference_imports_keep_transposed_convolutions():
    assert ModelConfig.from_dict({"generator": "unet_32"}).upsample == "transposed"


def test_paper_preset_keeps_the_papers_recipe():
    presets = pytest.importorskip("napari_pix2pix.presets")
    from napari_pix2pix.config import AugmentConfig

    m = presets.apply_preset("paper", ModelConfig())
    t = presets.apply_preset("paper", TrainConfig())
    assert m.upsample == "transposed" and (m.ngf, m.ndf, m.norm, m.dropout) == (64, 64, "batch", True)
    assert t.batch_size == 1 and t.augment == AugmentConfig(jitter=True, jitter_scale=286 / 256, flip=True)


def test_quick_cpu_preset_is_the_measured_short_run_recipe():
    """QUALITY.md (nuclei mask -> image, 300 steps, 3 seeds): for short CPU runs the L1 loss alone
    (lambda_gan 0) beat the cGAN + L1 recipe in PSNR, SSIM and correlation; bilinear decoder,
    batch 2, discriminator as wide as the generator. EMA (decay 0.99) was worse at 300 steps."""
    from napari_pix2pix.presets import apply_preset

    m = apply_preset("quick-cpu", ModelConfig())
    t = apply_preset("quick-cpu", TrainConfig())
    assert (m.generator, m.ngf, m.ndf, m.upsample) == ("unet_128", 16, 16, "bilinear")
    assert (t.crop, t.batch_size, t.lambda_gan, t.lambda_l1) == (128, 2, 0.0, 100.0)
    assert t.ema is False and TrainConfig().ema is False
    # 1000 steps, 2 seeds: the last weights scored below the 300-step model, the best validated one above
    assert t.select_best is True and t.validate_every > 0 and TrainConfig().select_best is False
    assert get_option(TrainConfig, "lambda_gan").default == 1.0  # the general default stays the paper's cGAN
    assert apply_preset("paper", t).lambda_gan == 1.0  # the paper preset restores the GAN term
    paper = apply_preset("paper", t)  # from the quick-cpu settings: the paper keeps the last weights, no EMA
    assert paper.select_best is False and paper.ema is False
