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
    net = build_generator(ModelConfig(generator=generator, norm=norm), init=False)
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
