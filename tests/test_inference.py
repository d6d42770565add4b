"""Inference on any size: shapes, exact single-tile equivalence, seamless tiling, stacks, modes."""

import numpy as np
import pytest
import torch

from napari_pix2pix.config import DataConfig, TileConfig
from napari_pix2pix.data.sources import from_arrays
from napari_pix2pix.discriminator_map import discriminator_maps
from napari_pix2pix.errors import InputError
from napari_pix2pix.inference import test_time_mode as tt_mode
from napari_pix2pix.inference import tile_weights, translate
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.training import Trainer

from _helpers import nuclei_2d, tiny_model, tiny_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny image -> mask-ish model trained briefly on the real nuclei pair (structure in its output)."""
    image, labels = nuclei_2d()
    data = from_arrays(image, labels, DataConfig())
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    Trainer(tiny_model(generator="unet_32", ngf=8), tiny_train(steps=40, crop=64, batch_size=4),
            data, out=path).run()
    return Pix2PixModel.load(path), image


@pytest.mark.parametrize("shape", [(300, 517), (2000, 2000), (1, 1), (3, 3), (37, 64)])
def test_any_size_keeps_shape_and_dtype(trained, shape):
    model, image = trained
    rng = np.random.default_rng(0)
    x = rng.integers(0, 236, size=shape).astype(np.uint16)
    y = translate(model, x, config=TileConfig(tile=512, overlap=64))
    assert y.shape == shape and y.dtype == np.uint16


def test_single_tile_equals_untiled_exactly(trained):
    model, image = trained
    untiled = translate(model, image[:300, :400], config=TileConfig(tile=0), output_dtype="float32")
    one_tile = translate(model, image[:300, :400], config=TileConfig(tile=512, overlap=64), output_dtype="float32")
    assert np.array_equal(untiled, one_tile)


def test_tiling_shows_no_seam_on_1024(trained):
    model, image = trained
    big = np.tile(image, (2, 2))  # 1024 x 1024
    untiled = translate(model, big, config=TileConfig(tile=0), output_dtype="float32")
    tiled = translate(model, big, config=TileConfig(tile=256, overlap=32), output_dtype="float32")
    value_range = float(untiled.max() - untiled.min())
    mad = float(np.abs(tiled - untiled).mean())
    print(f"1024^2 tiled (256/32) vs untiled: mean |diff| = {mad:.4f} = {100 * mad / value_range:.3f}% of range")
    assert value_range > 0 and mad < 0.02 * value_range


def test_tile_weights_partition_of_unity():
    w = tile_weights((300, 517), 128, 32)
    assert (w > 0).all()  # every pixel covered


def test_stack_is_translated_slice_by_slice(trained):
    model, image = trained
    stack = np.stack([image[:128, :128], image[128:256, :128], image[:128, 128:256]])
    out = translate(model, stack, config=TileConfig(tile=0))
    assert out.shape == stack.shape
    single = translate(model, stack[1], config=TileConfig(tile=0))
    assert np.array_equal(out[1], single)
    four_d = translate(model, stack[None].repeat(2, 0), config=TileConfig(tile=0))
    assert four_d.shape == (2,) + stack.shape


def test_train_mode_is_the_papers_and_leaves_running_stats_alone(trained):
    model, image = trained
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    a = translate(model, image[:128, :128], config=TileConfig(tile=0, mode="train", seed=1), output_dtype="float32")
    b = translate(model, image[:128, :128], config=TileConfig(tile=0, mode="train", seed=1), output_dtype="float32")
    e = translate(model, image[:128, :128], config=TileConfig(tile=0, mode="eval"), output_dtype="float32")
    assert np.array_equal(a, b) and not np.array_equal(a, e)
    after = model.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with tt_mode(model.generator, "train"):
        assert model.generator.training
    assert not model.generator.training


def test_bad_inputs_are_explained(trained):
    model, image = trained
    with pytest.raises(InputError, match="empty"):
        translate(model, np.zeros((0, 10), np.uint16))
    nan = image.astype(np.float32)
    nan[5, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        translate(model, nan)
    with pytest.raises(InputError, match="channels"):
        translate(model, np.zeros((32, 32, 3), np.uint8), channel_axis=-1)
    with pytest.raises(InputError, match="Fix:"):
        translate(model, np.zeros((32, 32), np.complex64))


def test_discriminator_maps_are_placed_over_receptive_fields(trained):
    model, image = trained
    src, tgt = image[:128, :128], (image[:128, :128] > 50).astype(np.uint16)
    real, fake = discriminator_maps(model, src, tgt)
    geo_rf = 34  # tiny model: 2-layer PatchGAN
    assert real.rf == geo_rf and real.logits.shape == (30, 30) == fake.logits.shape
    assert real.scale == (4.0, 4.0) and real.translate == (-11 + (34 - 1) / 2,) * 2
    assert real.cell_box(0, 0) == (0, 0, 22, 22) and real.cell_box(10, 10) == (29, 29, 62, 62)
    assert real.cell_at(*real.translate) == (0, 0)
    assert 0 <= real.fraction_real <= 1 and real.upsampled().shape == (128, 128)
    with pytest.raises(InputError, match="too small"):
        discriminator_maps(model, image[:8, :8])


def test_one_hot_label_input_translates(tmp_path):
    """A model whose A side is one-hot labels takes the 1-channel label image, not n channels."""
    from napari_pix2pix.config import NormConfig

    image, labels = nuclei_2d()
    classes = (labels[:128, :128] % 3).astype(np.uint8)  # three classes
    data = from_arrays(classes, image[:128, :128],
                       DataConfig(norm_a=NormConfig(mode="labels", label_encoding="onehot"), a_is_labels=True))
    assert data.in_channels == 3
    path = tmp_path / "onehot.safetensors"
    Trainer(tiny_model(in_channels=3), tiny_train(steps=1, crop=32), data, out=path).run()
    out = translate(Pix2PixModel.load(path), classes, config=TileConfig(tile=0))
    assert out.shape == classes.shape
