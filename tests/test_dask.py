"""Lazy dask inference (map_overlap over tiles): threaded scheduler, a dask.distributed
LocalCluster with 2 workers, zarr output, and agreement with the in-memory translate."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("zarr")

from _helpers import nuclei_2d, tiny_model, tiny_train  # noqa: E402

from napari_pix2pix.config import DataConfig, TileConfig  # noqa: E402
from napari_pix2pix.dask_inference import translate_dask, write_zarr  # noqa: E402
from napari_pix2pix.data.sources import from_arrays  # noqa: E402
from napari_pix2pix.inference import translate  # noqa: E402
from napari_pix2pix.model import Pix2PixModel  # noqa: E402
from napari_pix2pix.training import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    image, labels = nuclei_2d()
    trainer = Trainer(tiny_model(), tiny_train(steps=20, lr=1e-3, crop=64, batch_size=2),
                      from_arrays(labels, image, DataConfig()))  # mask -> image
    trainer.run()
    model = Pix2PixModel.from_checkpoint(trainer.checkpoint())
    return model, labels[:200, :300]


def test_one_block_per_slice_is_exactly_the_in_memory_result(setup):
    model, image = setup
    stack = np.stack([image, image[::-1]])
    lazy = translate_dask(model, da.from_array(stack, chunks=(1, 64, 64)), TileConfig(tile=0, batch_size=1))
    assert lazy.shape == stack.shape and lazy.dtype == stack.dtype
    expect = translate(model, stack, config=TileConfig(tile=0, batch_size=1))  # one slice per batch, as each block
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), expect)


def test_tiles_match_in_memory_translate_and_stay_lazy(setup):
    """Blocks see different context than the in-memory tiles near their edges, so the results
    are close rather than equal: no further from the in-memory tiled result than tiling itself
    is from the untiled one (the network's inherent tile-border effect)."""
    model, image = setup
    cfg = TileConfig(tile=128, overlap=32)
    ref = translate(model, image, config=cfg, output_dtype="float32")
    untiled = translate(model, image, config=TileConfig(tile=0), output_dtype="float32")
    inherent = np.abs(ref - untiled)
    for boundary in ("reflect", "none"):
        lazy = translate_dask(model, da.from_array(image), cfg, output_dtype="float32", boundary=boundary)
        assert max(lazy.chunks[0]) <= 128 - 2 * 32  # chunks are (at most) the tiles' cores
        out = lazy.compute(scheduler="threads")
        diff = np.abs(out - ref)
        print(f"{boundary}: |dask - in-memory| max {diff.max():.3g} mean {diff.mean():.3g}; "
              f"|tiled - untiled| max {inherent.max():.3g} mean {inherent.mean():.3g}; range {np.ptp(ref):.3g}")
        assert out.shape == image.shape
        assert diff.mean() <= 3 * inherent.mean() + 1e-3 and diff.max() <= 2 * inherent.max() + 1e-3


def test_local_cluster_two_workers_writes_zarr(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    model, image = setup
    cfg = TileConfig(tile=128, overlap=32)
    expect = translate_dask(model, da.from_array(image), cfg, output_dtype="float32").compute(scheduler="sync")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        lazy = translate_dask(model, da.from_array(image, chunks=(100, 100)), cfg, output_dtype="float32")
        stored = write_zarr(lazy, str(tmp_path / "out.zarr"))
    np.testing.assert_allclose(np.asarray(stored), expect, rtol=0, atol=1e-5)


def test_channel_axis_and_bad_input(setup):
    model, image = setup
    lazy = translate_dask(model, da.from_array(image[..., None]), TileConfig(tile=96, overlap=24), channel_axis=-1)
    assert lazy.shape == image.shape + (1,)
    with pytest.raises(Exception, match="boundary"):
        translate_dask(model, da.from_array(image), boundary="wrap")
