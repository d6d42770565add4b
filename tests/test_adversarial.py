"""Adversarial inputs (issue 17): crafted model files, images and checkpoints, each generated here
(no stored binaries), and the guarantees around them: nothing lost (non-finite saves refused,
no silent overwrites, preflight, fallback, stale temp files), nothing exhausted (limits checked
from headers before allocation), one-line Problem/Fix messages instead of tracebacks.

The resource cases run in one driver subprocess (this file run as a script) that forks once per
case under an address-space limit (``RLIMIT_AS``) and reports each case's peak RSS from
``wait4``: a case that tried to allocate gigabytes fails there instead of taking the machine.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PEAK_RSS_MB = 500


# ------------------------------------------------------------------------- generated files
def _tiny_config(**kw):
    from napari_pix2pix.config import ModelConfig

    base = dict(generator="unet_32", ngf=4, ndf=4, discriminator_layers=2, in_channels=1, out_channels=1)
    base.update(kw)
    return ModelConfig(**base)


def _real_model(path: Path) -> Path:
    import torch

    from napari_pix2pix.checkpoint import Checkpoint, save_checkpoint
    from napari_pix2pix.models import build_discriminator, build_generator

    torch.manual_seed(0)
    config = _tiny_config()
    return save_checkpoint(path, Checkpoint(model=config, generator=build_generator(config).state_dict(),
                                            discriminator=build_discriminator(config).state_dict(),
                                            data={"norm_a": {"mode": "fixed", "low": 0.0, "high": 255.0}}))


def _rewrite(src: Path, dst: Path, meta=None, tensors=None, header=None) -> Path:
    """Copy a model file, changing metadata fields, tensors (name -> tensor) or header entries
    (name -> dict update), without any of our checks (raw safetensors)."""
    from safetensors.torch import load_file, save_file

    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    if tensors is not None:
        state = load_file(str(src))
        state.update(tensors)
        save_file(state, str(dst), metadata={**head["__metadata__"], **(meta or {})})
        return dst
    head["__metadata__"].update(meta or {})
    for name, change in (header or {}).items():
        head[name].update(change)
    text = json.dumps(head).encode()
    dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    return dst


def _safetensors_bytes(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def _meta(**model) -> dict:
    return {"format": "napari-pix2pix", "model": json.dumps({**_tiny_config().to_dict(), **model})}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int, depth: int, ctype: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` with one tiny IDAT (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def make_cases(root: Path) -> dict:
    """name -> (CLI arguments, regex the one-line error must match). Files are written under ``root``."""
    import tifffile
    import torch

    root.mkdir(parents=True, exist_ok=True)
    real = _real_model(root / "real.safetensors")
    empty_meta = _meta()
    cases = {}

    def info(name, path, expect):
        cases[name] = (["info", str(path)], expect)

    # -- architecture from metadata: checked against the file size / bounds before any network exists
    big = {"generator/w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    for ngf, expect in ((600, "file holds only"), (1000, "file holds only"), (10**6, "outside 1..1024")):
        head = json.dumps({"__metadata__": _meta(generator="unet_256", ngf=ngf), **big}).encode()
        (root / f"ngf{ngf}.safetensors").write_bytes(_safetensors_bytes(head, bytes(4000)))
        info(f"metadata ngf={ngf}", root / f"ngf{ngf}.safetensors", expect)
    for depth in (40, 2000):
        path = _rewrite(real, root / f"unet{depth}.safetensors", meta=_meta(generator=f"unet_{2 ** depth}"))
        info(f"unet_2^{depth}", path, "levels|invalid configuration")
    # -- headers: size, tensor count, nesting
    path = root / "header-too-big.safetensors"
    with open(path, "wb") as fh:  # a sparse file: declared header of 17 MiB that really is there
        fh.write(struct.pack("<Q", 17 << 20))
        fh.truncate(8 + (17 << 20))
    info("17 MiB header", path, "more than the limit")
    entries = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(25_000)}
    head = json.dumps({"__metadata__": empty_meta, **entries}).encode()
    (root / "many.safetensors").write_bytes(_safetensors_bytes(head))
    info("25k empty tensors", root / "many.safetensors", "more than 20,000 tensors")
    head = b'{"__metadata__": {"format": "napari-pix2pix"}, "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    (root / "deep-header.safetensors").write_bytes(_safetensors_bytes(head))
    info("nested header", root / "deep-header.safetensors", "nested more than")
    info("nested metadata", _rewrite(real, root / "deep-meta.safetensors", meta={"model": "[" * 200_000}),
         "nested more than")
    # -- metadata types
    for name, meta, expect in (
            ("training not JSON", {"training": "hello"}, "not valid JSON"),
            ("training a string", {"training": '"hello"'}, "not a JSON object"),
            ("norm_a a string", {"data": json.dumps({"norm_a": "x"})}, "norm_a is a str"),
            ("one-hot n_classes 10^7", {"data": json.dumps({"norm_b": {"mode": "labels", "label_encoding": "onehot",
                                                                      "n_classes": 10**7}})}, "n_classes"),
            ("NaN normalisation", {"data": json.dumps({"norm_a": {"mode": "fixed", "low": float("nan"),
                                                                 "high": 1.0}})}, "not a finite number"),
            ("step huge", {"step": "9" * 5000}, "'step' is not a number"),
            ("history a dict", {"history": "{}"}, "not a JSON list")):
        info(name, _rewrite(real, root / f"{name.replace(' ', '_')}.safetensors", meta=meta), expect)
    # -- loaded weights
    w = "generator/down.0.0.weight"
    nan_w = torch.full((4, 1, 4, 4), float("nan"))
    info("NaN generator weight", _rewrite(real, root / "nan.safetensors", tensors={w: nan_w}),
         "NaN or infinite")
    info("dtype F32 relabelled I32", _rewrite(real, root / "i32.safetensors", header={w: {"dtype": "I32"}}),
         "wrong data types")
    info("optimizer state of the wrong shape",
         _rewrite(real, root / "adam.safetensors", meta={"optimizer_g_groups": "[]"},
                  tensors={"optimizer_g/0/exp_avg": torch.zeros(1000)}), "optimizer tensor")
    info("rng state not bytes", _rewrite(real, root / "rng.safetensors", tensors={"rng/torch": torch.zeros(9)}),
         "random-number state")
    info("a folder as model", root, "is a folder")
    # -- pickles where safetensors is expected
    import pickle

    (root / "pickle.safetensors").write_bytes(pickle.dumps({"a": 1}))
    info("pickle named .safetensors", root / "pickle.safetensors", "Python pickle")
    cases["import a pickle named .safetensors"] = (
        ["import", str(root / "pickle.safetensors"), "--out", str(root / "o.safetensors")], "pickle|refused")
    # -- foreign tensors that expand
    torch.save({"model.model.0.weight": torch.zeros(1).expand(256, 256, 64, 64)}, root / "stride0.pth")
    cases["stride-0 .pth"] = (["import", str(root / "stride0.pth"), "--out", str(root / "s.safetensors")],
                              "would expand")
    # -- images: the pixel limit from headers
    out = str(root / "out.tif")

    def translate(name, image, expect):
        cases[name] = (["translate", "--model", str(real), "--input", str(image), "--output", out], expect)

    (root / "bomb16.png").write_bytes(_png_header_only(20000, 20000, 16, 2))
    translate("16-bit RGB PNG 20000^2", root / "bomb16.png", "above the limit")
    (root / "bomb8.png").write_bytes(_png_header_only(40000, 40000, 8, 0))
    translate("8-bit PNG 40000^2", root / "bomb8.png", "above the limit")
    tifffile.imwrite(root / "bomb.tif", np.zeros((64, 64), np.uint8), compression="zlib")
    with tifffile.TiffFile(root / "bomb.tif", mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(51200)
        tif.pages[0].tags["ImageLength"].overwrite(51200)
    translate("zlib TIFF 51200^2", root / "bomb.tif", "above the limit")
    with open(root / "bomb.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (60000, 60000)})
        fh.write(bytes(64))
    translate("npy 60000^2", root / "bomb.npy", "above the limit|cannot be read")
    # -- 5-D inputs: refused the same way by translate and pair
    five = np.zeros((2, 2, 2, 32, 32), np.uint8)
    tifffile.imwrite(root / "five.tif", five, metadata={"axes": "QQZYX"})
    translate("5-D translate", root / "five.tif", r"at most 4 \(T, Z, Y, X\)")
    cases["5-D pair"] = (["pair", "--source", str(root / "five.tif"), "--target", str(root / "five.tif")],
                         r"at most 4 \(T, Z, Y, X\)")
    return cases


# ------------------------------------------------------------------------------ driver
def _run_case(args: list[str], limit_mb: int) -> dict:
    """In a forked child: limit the address space, run the CLI, capture its stderr."""
    import io
    import resource
    import time
    from contextlib import redirect_stderr, redirect_stdout

    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + limit_mb * 2**20, resource.RLIM_INFINITY))
    from napari_pix2pix import cli

    err, start = io.StringIO(), time.perf_counter()
    try:
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            code = cli.main(args)
    except BaseException as exc:  # noqa: BLE001 - a traceback is a failure to report
        code, err = -1, io.StringIO(f"{type(exc).__name__}: {exc}"[:500])
    return {"code": code, "stderr": err.getvalue(), "seconds": time.perf_counter() - start}


def drive(root: Path) -> None:
    """Make the cases, fork one child per case, print one JSON line per case."""
    import resource  # noqa: F401 - Unix only, like fork

    cases = make_cases(root)
    # import what the cases use once, before forking (the children share it)
    import PIL.Image  # noqa: F401
    import safetensors.torch  # noqa: F401

    from napari_pix2pix import checkpoint, cli, inference, io, model, reference  # noqa: F401
    from napari_pix2pix.data import sources  # noqa: F401

    for name, (args, expect) in cases.items():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read)
            try:
                result = _run_case(args, limit_mb=1024)
            except BaseException as exc:  # noqa: BLE001
                result = {"code": -2, "stderr": repr(exc)[:500], "seconds": 0.0}
            os.write(write, json.dumps(result).encode())
            os._exit(0)
        os.close(write)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        _, status, usage = os.wait4(pid, 0)
        result = json.loads(b"".join(chunks) or b'{"code": -3, "stderr": "no result", "seconds": 0}')
        result.update(name=name, expect=expect, status=status, peak_rss_mb=usage.ru_maxrss / 1024)
        print(json.dumps(result), flush=True)


@pytest.fixture(scope="module")
def adversarial_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("NAPARI_PIX2PIX_MAX_PIXELS", None)
    proc = subprocess.run([sys.executable, __file__, str(root)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert results, proc.stderr[-3000:]
    return {r["name"]: r for r in results}


CASE_NAMES = ["metadata ngf=600", "metadata ngf=1000", "metadata ngf=1000000", "unet_2^40", "unet_2^2000",
              "17 MiB header", "25k empty tensors", "nested header", "nested metadata", "training not JSON",
              "training a string", "norm_a a string", "one-hot n_classes 10^7", "NaN normalisation", "step huge",
              "history a dict", "NaN generator weight", "dtype F32 relabelled I32", "optimizer state of the wrong shape",
              "rng state not bytes", "a folder as model",
              "pickle named .safetensors", "import a pickle named .safetensors", "stride-0 .pth",
              "16-bit RGB PNG 20000^2", "8-bit PNG 40000^2", "zlib TIFF 51200^2", "npy 60000^2", "5-D translate",
              "5-D pair"]


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/status").exists(), reason="needs fork and /proc")
@pytest.mark.parametrize("name", CASE_NAMES)
def test_crafted_input_fails_in_one_line_within_memory(adversarial_results, name):
    import re

    r = adversarial_results[name]
    text = r["stderr"]
    assert r["code"] == 1, f"{name}: exit {r['code']}: {text}"
    assert text.startswith("error: ") and text.count("\n") == 1 and "Fix:" in text, text
    assert "Traceback" not in text and "tifffile" not in text, text  # tifffile's own log line is muted
    assert re.search(r["expect"], text), f"{name}: {text}"
    assert r["peak_rss_mb"] <= PEAK_RSS_MB, f"{name}: peak RSS {r['peak_rss_mb']:.0f} MB"


# ----------------------------------------------------------------- nothing lost: saves
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pair(folder: Path):
    import tifffile

    rng = np.random.default_rng(0)
    a = (rng.random((48, 48)) * 255).astype(np.uint8)
    tifffile.imwrite(folder / "A.tif", a)
    tifffile.imwrite(folder / "B.tif", 255 - a)
    return folder / "A.tif", folder / "B.tif"


def _trainer(tmp_path, resume=None, **train):
    from napari_pix2pix.config import DataConfig, TrainConfig
    from napari_pix2pix.data import from_arrays
    from napari_pix2pix.training import Trainer

    rng = np.random.default_rng(0)
    a = rng.random((48, 48)).astype(np.float32)
    dataset = from_arrays(a, 1 - a, DataConfig())
    config = TrainConfig(**{**dict(steps=4, crop=32, batch_size=1, seed=0, device="cpu", preview_every=0,
                                   log_every=1, checkpoint_every=2, checkpoint_dir=str(tmp_path / "ck")), **train})
    return Trainer(_tiny_config(), config, dataset, out=tmp_path / "m.safetensors", resume=resume)


def test_nan_stop_leaves_the_checkpoint_byte_identical_and_resumable(tmp_path):
    from napari_pix2pix.checkpoint import load_checkpoint
    from napari_pix2pix.errors import Pix2PixError

    _trainer(tmp_path).run()
    last, out = tmp_path / "ck" / "last.safetensors", tmp_path / "m.safetensors"
    before = {p: p.read_bytes() for p in (last, out)}
    trainer = _trainer(tmp_path, resume=last, steps=8)
    batches = trainer._batch  # the first step after resuming goes bad (as `--lr inf` once made it)

    def poisoned():
        a, b = batches()
        return a * float("nan"), b

    trainer._batch = poisoned
    with pytest.raises(Pix2PixError) as err:
        trainer.run()
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    assert {p: p.read_bytes() for p in (last, out)} == before
    assert not list((tmp_path / "ck").glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    resumed = _trainer(tmp_path, resume=last, steps=6)
    assert resumed.step == load_checkpoint(last).step == 4
    resumed.run()
    assert load_checkpoint(out).step == 6


def test_a_save_never_writes_a_non_finite_buffer(tmp_path):
    import torch

    from napari_pix2pix.checkpoint import NonFiniteStateError

    trainer = _trainer(tmp_path)
    trainer.run()
    before = (tmp_path / "m.safetensors").read_bytes()
    bn = next(m for m in trainer.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var.fill_(float("inf"))  # what --lr 1e6 did to a batch-norm statistic
    with pytest.raises(NonFiniteStateError, match="running_var"):
        trainer.save(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == before


def test_a_failed_save_writes_a_printed_fallback(tmp_path, monkeypatch):
    import errno

    from napari_pix2pix import checkpoint
    from napari_pix2pix.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from napari_pix2pix.models import build_generator
    from napari_pix2pix.paths import WriteError

    monkeypatch.setenv(checkpoint.ENV_RESCUE_DIR, str(tmp_path / "rescue"))
    real = checkpoint._write

    def full_disk(path, tensors, meta):
        if "rescue" not in str(path):
            raise checkpoint.WriteError("cannot write the model file: the disk is full.", "free some space.",
                                        errno.ENOSPC)
        return real(path, tensors, meta)

    monkeypatch.setattr(checkpoint, "_write", full_disk)
    config = _tiny_config()
    with pytest.raises(WriteError) as err:
        save_checkpoint(tmp_path / "m.safetensors", Checkpoint(model=config, step=7,
                                                               generator=build_generator(config).state_dict()))
    rescue = err.value.fallback
    assert rescue is not None and str(rescue) in str(err.value) and "\n" not in str(err.value)
    assert load_checkpoint(rescue).step == 7 and not (tmp_path / "m.safetensors").exists()


def test_write_errors_are_problem_and_fix(tmp_path, monkeypatch):
    import errno

    from napari_pix2pix.io import write_image
    from napari_pix2pix.paths import WriteError

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", enospc)
    with pytest.raises(WriteError, match="disk is full.*Fix:") as err:
        write_image(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert isinstance(err.value, OSError) and not list(tmp_path.iterdir())


def test_stale_temp_files_are_cleaned_on_save_and_resume(tmp_path):
    from napari_pix2pix.checkpoint import load_checkpoint

    path = _real_model(tmp_path / "m.safetensors")
    for i in range(2):
        stale = tmp_path / f".m.safetensors.{i}abc.tmp"
        stale.write_bytes(b"half a checkpoint")
        os.utime(stale, (1, 1))
        fresh = tmp_path / ".m.safetensors.busy.tmp"
        fresh.write_bytes(b"a write in progress")
        if i == 0:
            _real_model(path)  # save
        else:
            with pytest.warns(UserWarning, match="stale temporary"):
                load_checkpoint(path)  # resume
        assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_model_files_honour_the_umask(tmp_path, umask):
    from napari_pix2pix.io import write_image

    old = os.umask(umask)
    try:
        model = _real_model(tmp_path / "m.safetensors")
        png = write_image(tmp_path / "c.png", np.zeros((4, 4, 3), np.uint16))
    finally:
        os.umask(old)
    for p in (model, png):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------- no silent replacement (CLI)
def _train(a, b, out, *extra):
    from napari_pix2pix import cli

    return cli.main(["train", "--source", str(a), "--target", str(b), "--out", str(out), "--steps", "1",
                     "--generator", "unet_32", "--ngf", "4", "--ndf", "4", "--crop", "32",
                     "--discriminator-layers", "2", "--quiet", *extra])


def test_outputs_never_replace_inputs_or_existing_files(tmp_path, capsys):
    from napari_pix2pix import cli

    a, b = _pair(tmp_path)
    notes = tmp_path / "notes.tif"
    notes.write_bytes(b"II*\x00 unrelated")
    assert _train(a, b, notes) == 1 and notes.read_bytes() == b"II*\x00 unrelated"
    assert ".safetensors" in capsys.readouterr().err
    model = tmp_path / "m.safetensors"
    assert _train(a, b, model) == 0
    first = model.read_bytes()
    assert _train(a, b, model) == 1 and model.read_bytes() == first
    assert "already exists" in capsys.readouterr().err
    assert _train(a, b, model, "--overwrite", "--seed", "1") == 0 and model.read_bytes() != first
    source = a.read_bytes()
    for extra in ([], ["--overwrite"]):  # over the input: never, not even with --overwrite
        assert cli.main(["translate", "--model", str(model), "--input", str(a), "--output", str(a), *extra]) == 1
        assert a.read_bytes() == source and "input" in capsys.readouterr().err
    out = tmp_path / "o.tif"
    assert cli.main(["translate", "--model", str(model), "--input", str(a), "--output", str(out)]) == 0
    assert cli.main(["translate", "--model", str(model), "--input", str(a), "--output", str(out)]) == 1
    assert cli.main(["translate", "--model", str(model), "--input", str(a), "--output", str(out),
                     "--overwrite"]) == 0


def test_preflight_refuses_unwritable_outputs_before_training(tmp_path, capsys, monkeypatch):
    import shutil

    a, b = _pair(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _train(a, b, blocker / "m.safetensors") == 1
    assert _train(a, b, tmp_path / "m.safetensors", "--checkpoint-dir", str(blocker)) == 1
    err = capsys.readouterr().err
    assert err.count("error: ") == 2 and err.count("Fix:") == 2 and "Traceback" not in err
    assert not (tmp_path / "m.safetensors").exists()
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1024))
    assert _train(a, b, tmp_path / "m.safetensors") == 1
    assert "MiB free" in capsys.readouterr().err and not (tmp_path / "m.safetensors").exists()


# ------------------------------------------------------------------------- small checks
def test_float_options_reject_nan_and_inf(tmp_path, capsys):
    from napari_pix2pix import cli
    from napari_pix2pix.config import AugmentConfig, ConfigError, TrainConfig

    for kw in ({"lr": math.nan}, {"lr": math.inf}, {"lambda_l1": math.nan}, {"lambda_gan": math.inf},
               {"beta1": math.nan}):
        with pytest.raises(ConfigError, match="finite"):
            TrainConfig(**kw)
    with pytest.raises(ConfigError, match="finite"):
        AugmentConfig(jitter_scale=math.inf)
    a, b = _pair(tmp_path)
    with pytest.raises(SystemExit) as exit_:  # a usage error, before any data is read
        _train(a, b, tmp_path / "m.safetensors", "--lr", "nan")
    assert exit_.value.code == 2
    assert "finite" in capsys.readouterr().err and not (tmp_path / "m.safetensors").exists()


def test_json_depth_limit_without_recursion():
    from napari_pix2pix import limits
    from napari_pix2pix.errors import ModelFileError

    assert limits.json_depth(b'{"a": [1, {"b": "[[[["}]}') == 3
    with pytest.raises(ModelFileError, match="nested"):
        limits.loads("[" * 100_000 + "]" * 100_000, "x", "fix")


@pytest.mark.parametrize("name", ["a.tif", "a.png", "a.jpg", "a.npy", "c.png"])
def test_every_reader_checks_the_pixel_limit(tmp_path, name):
    from napari_pix2pix import limits
    from napari_pix2pix.errors import ImageReadError
    from napari_pix2pix.io import read_image, write_image

    array = np.zeros((40, 50, 3), np.uint16) if name == "c.png" else np.zeros((40, 50), np.uint8)
    path = write_image(tmp_path / name, array)
    limits.set_max_pixels(array.size - 1)
    try:
        with pytest.raises(ImageReadError, match="above the limit"):
            read_image(path)
    finally:
        limits.set_max_pixels(None)
    assert read_image(path).shape == array.shape


if __name__ == "__main__":  # the driver: python tests/test_adversarial.py ROOT
    drive(Path(sys.argv[1]))
