"""Issue 18: N stochastic passes (uncertainty) and the realism map. Random tiny models, no training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_pix2pix.config import TileConfig  # noqa: E402
from napari_pix2pix.errors import InputError  # noqa: E402


def random_model(generator="unet_64", in_channels=1, out_channels=1, data=None, dropout=True):
    """A random model (unet_64 has one dropout block; unet_32 has none) whose batch-norm running
    statistics come from one random batch, so that the passes' spread is not vanishingly small."""
    from napari_pix2pix.checkpoint import Checkpoint
    from napari_pix2pix.config import ModelConfig
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import build_discriminator, build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(generator=generator, ngf=4, ndf=4, discriminator_layers=2, in_channels=in_channels,
                      out_channels=out_channels, dropout=dropout)
    gen = build_generator(cfg)
    with torch.no_grad():  # batch-norm running statistics from one batch, so activations keep their scale
        for m in gen.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0
        gen.train()(torch.rand(4, in_channels, 64, 64) * 2 - 1)
        for m in gen.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
    return Pix2PixModel.from_checkpoint(Checkpoint(model=cfg, generator=gen.state_dict(),
                                                   discriminator=build_discriminator(cfg).state_dict(),
                                                   data=data or {}))


@pytest.fixture(scope="module")
def model(one_torch_thread):
    return random_model()


def image(h=64, w=160, seed=0):
    return np.random.default_rng(seed).random((h, w), dtype=np.float32)


def test_samples_are_deterministic_with_a_seed_and_vary_without(model):
    from napari_pix2pix.uncertainty import translate_samples

    cfg = TileConfig(tile=0)
    a = translate_samples(model, image(64, 64), config=cfg, samples=3, seed=7)
    b = translate_samples(model, image(64, 64), config=cfg, samples=3, seed=7)
    c = translate_samples(model, image(64, 64), config=cfg, samples=3, seed=8)
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.uncertainty, b.uncertainty)
    assert a.uncertainty.dtype == np.float32 and a.uncertainty.shape == a.output.shape == (64, 64)
    assert a.uncertainty.max() > 0  # the passes differ
    assert not np.array_equal(a.uncertainty, c.uncertainty)


def test_tiles_are_seeded_by_position_without_seams(model):
    from napari_pix2pix.uncertainty import blend_spread, translate_samples

    x = image(128, 160)
    one = translate_samples(model, x, config=TileConfig(tile=64, overlap=16, batch_size=1), samples=6, seed=1)
    many = translate_samples(model, x, config=TileConfig(tile=64, overlap=16, batch_size=16), samples=6, seed=1)
    # batch order does not matter: the same random draws per tile (a different batch size changes
    # only the last float bits of the convolutions; different draws would differ by ~the std itself)
    np.testing.assert_allclose(one.uncertainty, many.uncertainty, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.output, many.output, rtol=1e-4, atol=1e-6)
    # no bands where tiles overlap: the std there is at the level of the rest (blending independent
    # passes would lower it by sqrt(sum w^2) / sum w, which the module undoes)
    spread = blend_spread(x.shape, 64, 16, model.config.size_multiple)
    band = spread < 0.99
    assert band.any() and (~band).any()
    level = one.uncertainty[band].mean() / one.uncertainty[~band].mean()
    raw = (one.uncertainty * spread)[band].mean() / (one.uncertainty * spread)[~band].mean()
    assert 0.8 < level < 1.25
    assert raw < level


def test_one_sample_is_ordinary_inference(model):
    from napari_pix2pix.inference import translate
    from napari_pix2pix.uncertainty import translate_samples

    x = (image(64, 96) * 255).astype(np.uint8)
    cfg = TileConfig(tile=64, overlap=8)
    res = translate_samples(model, x, config=cfg)  # config.samples == 1
    np.testing.assert_array_equal(res.output, translate(model, x, config=cfg))
    assert res.uncertainty is None


def test_running_statistics_and_mode_are_kept(model):
    from napari_pix2pix.uncertainty import translate_samples

    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    model.generator.train()
    translate_samples(model, image(64, 64), config=TileConfig(tile=0), samples=2)
    assert model.generator.training
    model.generator.eval()
    for k, v in model.generator.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_model_without_dropout_is_refused(one_torch_thread):
    from napari_pix2pix.uncertainty import translate_samples

    with pytest.raises(InputError, match="no dropout"):
        translate_samples(random_model("unet_32"), image(32, 32), config=TileConfig(tile=0), samples=2)


def test_realism_map_is_aligned_to_the_output(model):
    from napari_pix2pix.uncertainty import translate_samples

    stack = np.stack([image(64, 96, s) for s in range(2)])
    res = translate_samples(model, stack, config=TileConfig(tile=0), samples=2, realism=True)
    assert res.output.shape == res.uncertainty.shape == (2, 64, 96)
    assert res.realism.shape == (2, 64, 96) and res.realism.dtype == np.float32
    assert 0 <= res.realism.min() <= res.realism.max() <= 1


def test_cli_writes_mean_std_and_realism(model, tmp_path):
    import tifffile

    from napari_pix2pix.cli import main

    path = model.save(tmp_path / "m.safetensors")
    x = (image(64, 96) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", x)
    args = ["translate", "--model", str(path), "--input", str(tmp_path / "in.tif"), "--tile", "64",
            "--overlap", "8", "--device", "cpu", "--quiet"]
    assert main(args + ["--output", str(tmp_path / "plain.tif")]) == 0
    assert main(args + ["--output", str(tmp_path / "mean.tif"), "--samples", "3", "--uncertainty",
                        str(tmp_path / "std.tif"), "--realism", str(tmp_path / "real.tif")]) == 0
    out, std = tifffile.imread(tmp_path / "mean.tif"), tifffile.imread(tmp_path / "std.tif")
    assert out.shape == std.shape == x.shape and std.dtype == np.float32 and out.dtype == np.uint8
    assert tifffile.imread(tmp_path / "real.tif").shape == x.shape
    with pytest.raises(SystemExit):  # --uncertainty without samples is a usage error
        main(args + ["--output", str(tmp_path / "x.tif"), "--uncertainty", str(tmp_path / "s.tif")])
