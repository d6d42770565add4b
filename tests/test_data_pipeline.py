"""The data path in one pass (issue 12, item 4): PairSpec -> load -> validate -> build_dataset,
each stage called exactly once per run, by the engine service and by every face."""

import sys
import types

import numpy as np
import pytest
import tifffile

from napari_pix2pix.data import PairSpec, from_ab_folder, from_arrays, from_channels, from_folders, from_paths, \
    from_spec, pair, pipeline
from napari_pix2pix.errors import DatasetError

from _helpers import nuclei_2d

STAGES = ("load", "validate", "build_dataset")


@pytest.fixture
def calls(monkeypatch):
    """Spy on each stage as the pipeline calls it: ``calls[stage]`` counts the calls."""
    counts = dict.fromkeys(STAGES, 0)
    for stage in STAGES:
        real = getattr(pipeline, stage)

        def spy(*args, _real=real, _stage=stage, **kwargs):
            counts[_stage] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(pipeline, stage, spy)
    return counts


def once(counts):
    return counts == dict.fromkeys(STAGES, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    image, labels = nuclei_2d()
    image, labels = image[:64, :64], labels[:64, :64]
    for name in ("A", "B", "AB"):
        (d / name).mkdir()
    for i in range(2):
        tifffile.imwrite(d / "A" / f"p{i}.tif", labels)
        tifffile.imwrite(d / "B" / f"p{i}.tif", image)
        tifffile.imwrite(d / "AB" / f"p{i}.tif", np.concatenate([image, image], axis=1))
    tifffile.imwrite(d / "mask.tif", labels)
    tifffile.imwrite(d / "image.tif", image)
    tifffile.imwrite(d / "cyx.tif", np.stack([image, image // 2]))
    return d, image, labels


def test_engine_service_runs_each_stage_once(data, calls):
    d, image, labels = data
    builds = [
        lambda: pair(PairSpec.arrays(labels, image, names="n")),
        lambda: from_arrays([labels, labels], [image, image]),
        lambda: from_folders(d / "A", d / "B"),
        lambda: from_ab_folder(d / "AB"),
        lambda: from_paths(d / "mask.tif", d / "image.tif"),
        lambda: from_channels(np.stack([image, image], -1), [0], [1]),
        lambda: from_spec({"kind": "folders", "a": str(d / "A"), "b": str(d / "B")}),
    ]
    for build in builds:
        for stage in STAGES:
            calls[stage] = 0
        dataset = build()
        assert len(dataset) >= 1 and once(calls), calls


def test_a_bad_source_stops_at_validate(data, calls, tmp_path):
    d, image, _ = data
    (tmp_path / "B").mkdir()
    tifffile.imwrite(tmp_path / "B" / "p0.tif", image[:32])
    with pytest.raises(DatasetError) as exc:
        from_folders(d / "A", tmp_path / "B")
    assert "size mismatch" in str(exc.value) and "missing partner" in str(exc.value)
    assert calls == {"load": 1, "validate": 1, "build_dataset": 0}


def test_cli_pair_and_train_run_each_stage_once(data, calls, tmp_path, capsys):
    from napari_pix2pix.cli import main

    d, _, _ = data
    assert main(["pair", "--source", str(d / "cyx.tif"), "--channels-a", "0", "--channels-b", "1"]) == 0
    assert once(calls) and "channels on axis 0 (2 channels)" in capsys.readouterr().err
    for stage in STAGES:
        calls[stage] = 0
    out = tmp_path / "m.safetensors"
    assert main(["train", "--source", str(d / "A"), "--target", str(d / "B"), "--out", str(out), "--steps", "1",
                 "--generator", "unet_32", "--ngf", "4", "--ndf", "4", "--discriminator-layers", "2", "--crop", "32",
                 "--batch-size", "1", "--validation", "0.5", "--device", "cpu", "--no-estimate", "--quiet"]) == 0
    assert out.is_file() and once(calls), calls


def test_napari_pair_job_runs_each_stage_once(data, calls):
    pytest.importorskip("magicgui")
    from napari_pix2pix._napari._pair_widget import PairJob, run_pair_job
    from napari_pix2pix.config import DataConfig

    d, _, _ = data
    config = DataConfig(validation_fraction=0.5)
    dataset, train, val = run_pair_job(PairJob(PairSpec.folders(d / "A", d / "B", config)), config)
    assert len(train) == len(val) == 1 and once(calls), calls


def test_nodes_pair_images_runs_each_stage_once(calls, monkeypatch):
    nodes_tests = pytest.importorskip("test_nodes")  # loads the pack as ComfyUI does
    monkeypatch.setitem(sys.modules, "nodes", types.ModuleType("nodes"))  # ComfyUI's own `nodes`
    pack = nodes_tests.load_pack("custom_nodes.napari_pix2pix_nodes_spy", search=[str(nodes_tests.PACK)])
    a = nodes_tests.images(2, 40, 48, 3)
    dataset, _ = nodes_tests.call(pack.NODE_CLASS_MAPPINGS["Pix2PixPairImages"], images_a=a, images_b=a * 0.5)
    assert len(dataset) == 2 and once(calls), calls


def test_a_colorize_spec_goes_to_the_task_builder(calls, tmp_path):
    rgb = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "photo.tif", rgb)
    dataset = pair(PairSpec.colorize(tmp_path))
    assert dataset.source["task"] == "colorize" and (dataset.in_channels, dataset.out_channels) == (1, 2)
    assert calls == dict.fromkeys(STAGES, 0)


def test_every_face_holds_out_the_same_pairs_whatever_the_training_seed(tmp_path, monkeypatch):
    """The validation pairs belong to the data: napari, the CLI and the nodes hold out the same
    ones for the same data and fraction, and a training seed does not move them."""
    from napari_pix2pix.cli import main
    from napari_pix2pix.data.sources import PairedDataset

    image, labels = nuclei_2d()
    image, labels = image[:40, :48], labels[:40, :48]
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
    for i in range(5):
        tifffile.imwrite(tmp_path / "A" / f"p{i}.tif", labels)
        tifffile.imwrite(tmp_path / "B" / f"p{i}.tif", image)
    held = []
    real = PairedDataset.split

    def spy(self, fraction, seed=0):
        train, val = real(self, fraction, seed)
        held.append(sorted(p.name for p in val.pairs))
        return train, val

    monkeypatch.setattr(PairedDataset, "split", spy)
    dataset = from_folders(tmp_path / "A", tmp_path / "B")
    assert sorted(p.name for p in real(dataset, 0.4, 0)[1].pairs) != \
        sorted(p.name for p in real(dataset, 0.4, 5)[1].pairs)  # seed 5 alone would hold out others

    assert main(["train", "--source", str(tmp_path / "A"), "--target", str(tmp_path / "B"), "--steps", "1",
                 "--out", str(tmp_path / "m.safetensors"), "--generator", "unet_32", "--ngf", "4", "--ndf", "4",
                 "--discriminator-layers", "2", "--crop", "32", "--batch-size", "1", "--validation", "0.4",
                 "--seed", "5", "--device", "cpu", "--no-estimate", "--quiet"]) == 0
    nodes_tests = pytest.importorskip("test_nodes")
    monkeypatch.setitem(sys.modules, "nodes", types.ModuleType("nodes"))
    monkeypatch.setenv("NAPARI_PIX2PIX_MODEL_DIR", str(tmp_path / "models"))
    pack = nodes_tests.load_pack("custom_nodes.napari_pix2pix_nodes_holdout", search=[str(nodes_tests.PACK)])
    nodes_tests.call(pack.NODE_CLASS_MAPPINGS["Pix2PixTrain"], dataset=dataset, validation_fraction=0.4,
                     autosave="", **dict(nodes_tests.TINY, steps=1, seed=5))
    pytest.importorskip("magicgui")
    from napari_pix2pix._napari._pair_widget import PairJob, run_pair_job
    from napari_pix2pix.config import DataConfig

    config = DataConfig(validation_fraction=0.4)
    run_pair_job(PairJob(PairSpec.folders(tmp_path / "A", tmp_path / "B", config)), config)
    assert len(held) == 3 and held[0] == held[1] == held[2] and len(held[0]) == 2, held
