"""Architecture facts from the paper and the reference implementation: parameter counts,
receptive fields, map sizes and the input box each map cell sees."""

import pytest
import torch

from napari_pix2pix.config import ModelConfig
from napari_pix2pix.models import build_discriminator, build_generator, count_parameters, geometry


@pytest.mark.parametrize("generator, norm, expected", [
    ("unet_256", "batch", 54_413_955),
    ("unet_256", "instance", 54_409_603),
    ("unet_128", "batch", 41_828_995),
    ("resnet_9blocks", "batch", 11_383_427),
    ("resnet_6blocks", "batch", 7_841_411),
])
def test_generator_parameter_counts(generator, norm, expected):
    net = build_generator(ModelConfig(generator=generator, norm=norm, upsample="transposed"), init=False)
    assert count_parameters(net) == expected


@pytest.mark.parametrize("layers, expected", [(1, 139_585), (3, 2_768_705), (5, 11_159_361)])
def test_patchgan_parameter_counts(layers, expected):
    net = build_discriminator(ModelConfig(discriminator_layers=layers), init=False)
    assert count_parameters(net) == expected


def test_pixelgan_parameter_count():
    assert count_parameters(build_discriminator(ModelConfig(discriminator="pixel"), init=False)) == 9_024


@pytest.mark.parametrize("layers, rf", [(1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_fields(layers, rf):
    assert geometry(build_discriminator(ModelConfig(discriminator_layers=layers, ndf=4), init=False)).rf == rf


def test_pixelgan_receptive_field_is_one_pixel():
    geo = geometry(build_discriminator(ModelConfig(discriminator="pixel", ndf=4), init=False))
    assert geo.rf == 1 and geo.map_size(37, 41) == (37, 41)


def test_imagegan_sees_whole_input():
    net = build_discriminator(ModelConfig(discriminator="image", ndf=4), init=False)
    geo = geometry(net)
    assert geo.global_pool and geo.map_size(256) == (1, 1)
    assert geo.cell_box(0, 0, 256, 300) == (0, 0, 255, 299)
    assert net(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 1, 1)


def test_map_size_matches_network_output():
    net = build_discriminator(ModelConfig(ndf=4), init=False)
    geo = geometry(net)
    assert geo.map_size(256) == (30, 30)
    for h, w in [(256, 256), (100, 172), (64, 64)]:
        assert tuple(net(torch.zeros(1, 6, h, w)).shape[-2:]) == geo.map_size(h, w)


def test_cell_boxes_for_70x70_patchgan():
    geo = geometry(build_discriminator(ModelConfig(ndf=4), init=False))
    for i in (0, 1, 7, 29):
        r0, c0, r1, c1 = geo.cell_box(i, i)
        assert (r0, r1) == (8 * i - 23, 8 * i + 46)
    assert geo.cell_box(0, 29, 256, 256) == (0, 209, 46, 255)  # clipped to the image


def test_cell_box_contains_every_influencing_pixel():
    """Autograd check: the gradient of one cell is zero outside its computed box."""
    torch.manual_seed(0)
    for layers in (1, 2, 3):
        net = build_discriminator(ModelConfig(discriminator_layers=layers, ndf=2, norm="none"), init=True).double()
        geo = geometry(net)
        x = torch.randn(1, 6, 96, 96, dtype=torch.double, requires_grad=True)
        out = net(x)
        i, j = out.shape[-2] // 2, out.shape[-1] // 2
        out[0, 0, i, j].backward()
        grad = x.grad.abs().sum(1)[0]
        rows, cols = torch.nonzero(grad, as_tuple=True)
        r0, c0, r1, c1 = geo.cell_box(i, j, 96, 96)
        assert rows.min() >= r0 and rows.max() <= r1 and cols.min() >= c0 and cols.max() <= c1
        # and the box is tight: influence reaches its edges
        assert rows.min() == r0 and rows.max() == r1


def test_unet_structure():
    net = build_generator(ModelConfig(), init=False)
    downs = list(net.down)
    norms = [any(isinstance(m, torch.nn.BatchNorm2d) for m in d) for d in downs]
    assert norms == [False] + [True] * 6 + [False]  # no norm outermost and innermost
    dropouts = [any(isinstance(m, torch.nn.Dropout) for m in u) for u in net.up]
    assert sum(dropouts) == 3 and dropouts[4:7] == [True] * 3  # three innermost decoder blocks
    assert not any(isinstance(m, torch.nn.Dropout)
                   for m in build_generator(ModelConfig(dropout=False), init=False).modules())


@pytest.mark.parametrize("generator", ["unet_64", "resnet_6blocks"])
def test_generators_any_channels(generator):
    net = build_generator(ModelConfig(generator=generator, in_channels=2, out_channels=5, ngf=4), init=True)
    y = net(torch.randn(2, 2, 64, 64))
    assert y.shape == (2, 5, 64, 64) and y.abs().max() <= 1


def test_encoder_decoder_without_skips_is_smaller_and_runs():
    skip = build_generator(ModelConfig(generator="unet_64", ngf=8), init=False)
    plain = build_generator(ModelConfig(generator="unet_64", ngf=8, unet_skips=False), init=False)
    assert count_parameters(plain) < count_parameters(skip)
    assert plain(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_init_is_normal_002():
    torch.manual_seed(0)
    net = build_generator(ModelConfig(ngf=16), init=True)
    w = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.001


# ----------------------------------------------------------------------------- upsampling
@pytest.mark.parametrize("generator, upsample, expected", [
    ("unet_256", "bilinear", 39_157_251),
    ("unet_256", "nearest", 39_157_251),
    ("unet_128", "bilinear", 30_242_307),
    ("resnet_9blocks", "bilinear", 11_383_427),
])
def test_resize_convolution_parameter_counts(generator, upsample, expected):
    """Pinned so that a change is deliberate (benchmarks/param_counts.py prints the README table)."""
    net = build_generator(ModelConfig(generator=generator, upsample=upsample), init=False)
    assert count_parameters(net) == expected


@pytest.mark.parametrize("generator", ["unet_32", "resnet_6blocks"])
@pytest.mark.parametrize("upsample", ["transposed", "bilinear", "nearest"])
def test_upsample_variant_trains_and_round_trips(generator, upsample, tmp_path, one_torch_thread):
    """Every variant builds, trains a few steps and comes back from its model file with the
    same option and the same output."""
    import numpy as np

    from napari_pix2pix.data import from_arrays
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.training import Trainer

    from _helpers import nuclei_2d, tiny_model, tiny_train

    image, mask = nuclei_2d()
    data = from_arrays(mask[:64, :64], image[:64, :64], names="nuclei")
    model = tiny_model(generator=generator, ngf=4, ndf=4, upsample=upsample)
    out = tmp_path / "m.safetensors"
    trainer = Trainer(model, tiny_train(steps=3, batch_size=1), data, out=out)
    trainer.run()
    loaded = Pix2PixModel.load(out)
    assert loaded.config.upsample == upsample
    x = torch.from_numpy(np.ascontiguousarray(data.pairs[0].a[None, :, :32, :32]))
    trainer.generator.eval()
    loaded.generator.eval()
    with torch.no_grad():
        assert torch.equal(trainer.generator(x), loaded.generator(x))


def test_resize_convolution_has_no_norm_at_the_innermost_up_block():
    net = build_generator(ModelConfig(generator="unet_32", ngf=4, upsample="bilinear"), init=False)
    inner = net.up[net.depth - 1]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inner)
    assert inner[0].bias is not None and inner[0].kernel_size == (3, 3)
    paper = build_generator(ModelConfig(generator="unet_32", ngf=4, upsample="transposed"), init=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in paper.up[paper.depth - 1])


def test_resize_convolution_paints_no_checkerboard_at_initialisation():
    """A constant input gives a constant interior through resize-conv, but a periodic pattern
    through transposed convolutions (the uneven kernel overlap)."""
    from napari_pix2pix.models.layers import init_weights, make_upsample

    torch.manual_seed(0)
    x = torch.ones(1, 4, 8, 8)
    for mode, periodic in (("transposed", True), ("bilinear", False), ("nearest", False)):
        layer = torch.nn.Sequential(*make_upsample(mode, 4, 4, bias=False))
        init_weights(layer)
        y = layer(x)[0, :, 2:-2, 2:-2]  # away from the border
        assert bool((y.std(dim=(-2, -1)) > 1e-6).any()) == periodic, mode


def test_old_model_files_load_as_transposed(tmp_path):
    """A model dict without ``upsample`` (files written before the option) means transposed
    convolutions, whatever today's default is."""
    import dataclasses

    from napari_pix2pix.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    config = ModelConfig(generator="unet_32", ngf=4, ndf=4, in_channels=1, out_channels=1, upsample="transposed")
    old = {k: v for k, v in config.to_dict().items() if k != "upsample"}
    assert ModelConfig.from_dict(old).upsample == "transposed"

    class Legacy(type(config)):  # serialises like a file from before the option
        def to_dict(self):
            return {k: v for k, v in dataclasses.asdict(self).items() if k != "upsample"}

    legacy = Legacy(**config.to_dict())
    g, d = build_generator(config), build_discriminator(config)
    path = save_checkpoint(tmp_path / "old.safetensors", Checkpoint(model=legacy, step=0, generator=g.state_dict(),
                                                                    discriminator=d.state_dict()))
    assert load_checkpoint(path).model.upsample == "transposed"
