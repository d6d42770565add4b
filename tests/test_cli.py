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


# ------------------------------------------------------------------------ issue 15: readable CLI
def test_pair_prints_a_table_and_json(files, capsys):
    d, _ = files
    src = ["--source", str(d / "mask.tif"), "--target", str(d / "image.tif")]
    capsys.readouterr()
    assert main(["pair", *src]) == 0
    out = capsys.readouterr().out
    assert "1 pair(s)" in out and "normalisation" in out and "{" not in out
    assert main(["pair", *src, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 1


def test_norm_fixed_takes_a_range(files, capsys):
    d, _ = files
    src = ["--source", str(d / "mask.tif"), "--target", str(d / "image.tif"), "--json"]
    with pytest.raises(SystemExit) as exc:
        main(["pair", *src, "--norm-b", "fixed"])
    assert exc.value.code == 2 and "--range-b" in capsys.readouterr().err
    assert main(["pair", *src, "--range-b", "0", "1000"]) == 0
    norm = json.loads(capsys.readouterr().out)["b"]["normalization"]
    assert norm["mode"] == "fixed" and (norm["low"], norm["high"]) == (0.0, 1000.0)


def test_channel_axis_is_detected_announced_or_asked_for(tmp_path, capsys):
    image, _ = nuclei_2d()
    cyx = np.stack([image[:64, :64], image[64:128, :64]])  # C, Y, X
    tifffile.imwrite(tmp_path / "cyx.tif", cyx)
    src = ["--source", str(tmp_path / "cyx.tif"), "--channels-a", "0", "--channels-b", "1", "--json"]
    capsys.readouterr()
    assert main(["pair", *src]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["a"]["shapes"] == {"1x64x64": 1}
    assert main(["pair", *src[:-1]]) == 0
    assert "channels on axis 0 (2 channels)" in capsys.readouterr().err
    tifffile.imwrite(tmp_path / "odd.tif", np.zeros((4, 64, 3), np.uint16))
    assert main(["pair", "--source", str(tmp_path / "odd.tif"), "--channels-a", "0", "--channels-b", "1"]) == 1
    assert "--channel-axis" in capsys.readouterr().err
    assert main(["pair", *src, "--channel-axis", "0"]) == 0


def test_validate_every_without_validation_is_refused(files, tmp_path, capsys):
    d, _ = files
    with pytest.raises(SystemExit) as exc:
        main(["train", "--source", str(d / "mask.tif"), "--target", str(d / "image.tif"), "--out",
              str(tmp_path / "m.safetensors"), "--validation", "0", "--validate-every", "5"])
    assert exc.value.code == 2 and "--validation" in capsys.readouterr().err


def test_out_of_range_and_bad_device_are_usage_errors(files, tmp_path, capsys):
    d, model = files
    for bad in (["--tile", "99999"], ["--device", "gpu"], ["--overlap", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(["translate", "--model", str(model), "--input", str(d / "mask.tif"), "--output",
                  str(tmp_path / "o.tif"), *bad])
        assert exc.value.code == 2
    assert "cuda:N" in capsys.readouterr().err


def test_train_reports_validations_saves_and_a_summary(files, tmp_path, capsys):
    d, _ = files
    out = tmp_path / "v.safetensors"
    capsys.readouterr()
    assert main(["train", "--source", str(d / "mask.tif"), "--target", str(d / "image.tif"), "--out", str(out),
                 "--preset", "quick-cpu", "--generator", "unet_32", "--ngf", "8", "--ndf", "8", "--steps", "2",
                 "--crop", "32", "--discriminator-layers", "2", "--validation", "0.25", "--validate-every", "1",
                 "--no-estimate", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert text.count("validation at step") == 2 and "PSNR" in text and "best" in text
    saved = [ln for ln in text.splitlines() if ln.startswith("saved ")]
    assert len(saved) == len(set(saved))  # one line per file written (best.safetensors at each record)
    assert sum(f"saved {out} " in ln for ln in saved) == 1 and "done: 2 steps" in captured.out
    info = json.loads((main(["info", str(out), "--json"]), capsys.readouterr().out)[1])
    assert info["generator"] == "unet_32" and info["ngf"] == 8 and info["training"]["batch_size"] == 2  # preset
    assert info["training"]["augment"]["rot90"] is False


def test_translate_takes_the_targets_dtype(files, tmp_path):
    d, model = files
    mask8 = tifffile.imread(d / "mask.tif").astype(np.uint8)
    tifffile.imwrite(tmp_path / "mask8.tif", mask8)
    assert main(["translate", "--model", str(model), "--input", str(tmp_path / "mask8.tif"), "--output",
                 str(tmp_path / "o.tif"), "--tile", "0", "--quiet"]) == 0
    assert tifffile.imread(tmp_path / "o.tif").dtype == np.uint16  # image.tif, B, is uint16
    assert main(["translate", "--model", str(model), "--input", str(tmp_path / "mask8.tif"), "--output",
                 str(tmp_path / "i.tif"), "--tile", "0", "--output-dtype", "input", "--quiet"]) == 0
    assert tifffile.imread(tmp_path / "i.tif").dtype == np.uint8


def test_info_shows_imported_from_and_a_missing_discriminator(files, tmp_path, capsys):
    from napari_pix2pix.checkpoint import load_checkpoint, save_checkpoint

    _, model = files
    ckpt = load_checkpoint(model)
    ckpt.discriminator = {}
    ckpt.metadata = dict(ckpt.metadata, imported_from=json.dumps({"file": "latest_net_G.pth", "kind": "test"}))
    path = save_checkpoint(tmp_path / "imported.safetensors", ckpt)
    capsys.readouterr()
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["imported_from"] == {"file": "latest_net_G.pth", "kind": "test"}
    assert info["has_discriminator"] is False
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "latest_net_G.pth" in text and "none in this file" in text and "discriminator_parameters" not in text


def test_broken_pipe_exits_quietly(files):
    import subprocess
    import sys

    d, _ = files
    proc = subprocess.Popen([sys.executable, "-m", "napari_pix2pix", "pair", "--source", str(d / "mask.tif"),
                             "--target", str(d / "image.tif"), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader went away, as `| head -0` does
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_channel_axis_with_two_files(tmp_path, capsys):
    image, labels = nuclei_2d()
    tifffile.imwrite(tmp_path / "a.tif", np.stack([image[:64, :64]] * 2))  # C, Y, X
    tifffile.imwrite(tmp_path / "b.tif", labels[:64, :64])                  # Y, X
    capsys.readouterr()
    assert main(["pair", "--source", str(tmp_path / "a.tif"), "--target", str(tmp_path / "b.tif"),
                 "--channel-axis", "0", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pairs"] == 1 and d["a"]["channels"] == 2 and d["b"]["channels"] == 1
