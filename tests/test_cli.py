"""The CLI contract: train -> translate -> info, exit codes, one-line errors."""

import json

import numpy as np
import pytest
import tifffile

from napari_pix2pix.cli import main

from _helpers import nuclei_2d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    image, labels = nuclei_2d()
    tifffile.imwrite(d / "mask.tif", labels[:256, :256])
    tifffile.imwrite(d / "image.tif", image[:256, :256])
    model = d / "model.safetensors"
    code = main(["train", "--source", str(d / "mask.tif"), "--target", str(d / "image.tif"), "--out", str(model),
                 "--steps", "3", "--generator", "unet_32", "--ngf", "8", "--ndf", "8", "--discriminator-layers", "2",
                 "--crop", "32", "--batch-size", "2", "--seed", "1", "--device", "cpu", "--quiet"])
    assert code == 0 and model.is_file()
    return d, model


def test_info_json(files, capsys):
    _, model = files
    capsys.readouterr()
    assert main(["info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("generator", "in_channels", "out_channels", "parameters", "discriminator_parameters",
                "receptive_field", "steps"):
        assert key in info
    assert info["generator"] == "unet_32" and info["steps"] == 3 and info["receptive_field"] == 34
    assert info["in_channels"] == info["out_channels"] == 1 and info["parameters"] > 0


def test_translate_file_and_folder(files, tmp_path):
    d, model = files
    out = tmp_path / "out.tif"
    assert main(["translate", "--model", str(model), "--input", str(d / "mask.tif"), "--output", str(out),
                 "--tile", "128", "--overlap", "16", "--quiet"]) == 0
    y = tifffile.imread(out)
    assert y.shape == (256, 256) and y.dtype == np.uint16
    assert main(["translate", "--model", str(model), "--input", str(d), "--output", str(tmp_path / "dir"),
                 "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["image.tif", "mask.tif"]


def test_resume_continues_step_count(files, tmp_path):
    d, model = files
    out = tmp_path / "more.safetensors"
    assert main(["train", "--source", str(d / "mask.tif"), "--target", str(d / "image.tif"), "--out", str(out),
                 "--steps", "5", "--crop", "32", "--resume", str(model), "--quiet"]) == 0
    from napari_pix2pix.checkpoint import load_checkpoint

    assert load_checkpoint(out).step == 5


def test_exit_codes(files, tmp_path, capsys):
    d, model = files
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "3"])
    assert exc.value.code == 2
    not_model = tmp_path / "x.safetensors"
    not_model.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    capsys.readouterr()
    assert main(["info", str(not_model)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "PNG" in err and "Fix:" in err and "\n" not in err
    assert main(["translate", "--model", str(model), "--input", str(tmp_path / "missing.tif"),
                 "--output", str(tmp_path / "o.tif")]) == 1
