"""ONNX export and torch-free inference: metadata, dynamic axes, parity with torch (<= 1e-4 fp32),
the onnxruntime backend without torch, and bad input (untraceable, unwritable, unknown format,
foreign .onnx files)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the [onnx] extra (onnx) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnxruntime) is not installed")

from napari_pix2pix.config import TileConfig  # noqa: E402
from napari_pix2pix.errors import ModelFileError, Pix2PixError  # noqa: E402
from napari_pix2pix.export import ExportError, export_model  # noqa: E402

from _helpers import REPO, nuclei_2d  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tiny_model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = export_model(tiny_model_file, out, format="onnx")
    return tiny_model_file, result


@pytest.fixture(scope="module")
def intensity_exported(tmp_path_factory):
    """An untrained unet_32 (ngf 4) mapping 16-bit intensities to 16-bit intensities (percentile
    normalisation on both sides), as .safetensors and .onnx: its output is a continuous value."""
    import torch

    from napari_pix2pix.checkpoint import Checkpoint
    from napari_pix2pix.config import ModelConfig
    from napari_pix2pix.data.normalize import fit_normalization
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import build_generator

    image, _ = nuclei_2d()
    norm = fit_normalization([image[None]]).to_dict()
    torch.manual_seed(0)
    config = ModelConfig(generator="unet_32", in_channels=1, out_channels=1, ngf=4, ndf=4)
    ckpt = Checkpoint(model=config, generator=build_generator(config).state_dict(),
                      data={"norm_a": norm, "norm_b": norm})
    folder = tmp_path_factory.mktemp("intensity")
    path = Pix2PixModel(ckpt).save(folder / "intensity.safetensors")
    return path, export_model(path, folder / "intensity.onnx")


def test_metadata_dynamic_axes_and_eval_mode(exported):
    _, result = exported
    proto = onnx.load(str(result.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["format"] == "napari-pix2pix-onnx" and meta["mode"] == "eval" and meta["task"] == "translate"
    assert json.loads(meta["model"])["generator"] == "unet_32"
    assert json.loads(meta["norm_a"])["mode"] == "percentile" and json.loads(meta["norm_b"])["mode"] == "labels"
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input]
    assert dims == [["batch", 1, "height", "width"]]
    assert max(result.parity.values()) <= TOL


@pytest.mark.parametrize("shape", [(256, 256), (96, 160)])
def test_parity_with_torch_random_and_real_image(exported, shape, one_torch_thread):
    import torch

    from napari_pix2pix.model import Pix2PixModel

    path, result = exported
    model = Pix2PixModel.load(path)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    image, _ = nuclei_2d()
    h, w = shape
    real = model.normalization("a").forward(image[None, :h, :w].astype(np.float32))[None]
    rand = np.random.default_rng(1).uniform(-1, 1, (2, 1, h, w)).astype(np.float32)  # batch 2: dynamic batch
    for x in (rand, real):
        with torch.no_grad():
            ref = model.generator.eval()(torch.from_numpy(x)).numpy()
        got = session.run(None, {"input": x})[0]
        err = float(np.abs(ref - got).max())
        print(f"{shape} {'random' if x is rand else 'real'}: max |onnxruntime - torch| = {err:.2e}")
        assert got.shape == ref.shape and err <= TOL


NO_TORCH = textwrap.dedent('''
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, BlockTorch())
    from napari_pix2pix.cli import main

    code = main(sys.argv[1:])
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
    sys.exit(code)
''')


def test_translate_without_torch_matches_torch_backend(intensity_exported, tmp_path):
    import tifffile

    from napari_pix2pix.cli import main

    model_file, result = intensity_exported
    image, _ = nuclei_2d()
    src = tmp_path / "in16.tif"
    tifffile.imwrite(src, image[:200, :300].astype(np.uint16))  # 16-bit, non-square, tiled below
    common = ["--input", str(src), "--tile", "128", "--overlap", "16", "--output-dtype", "float32", "--quiet"]
    assert main(["translate", "--model", str(model_file), "--output", str(tmp_path / "torch.tif"), *common]) == 0
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    proc = subprocess.run([sys.executable, str(script), "translate", "--model", str(result.path), "--backend",
                           "onnxruntime", "--output", str(tmp_path / "ort.tif"), *common],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    a, b = tifffile.imread(tmp_path / "torch.tif"), tifffile.imread(tmp_path / "ort.tif")
    err = float(np.abs(a.astype(np.float64) - b).max())
    print(f"16-bit image, tiled: max |onnxruntime - torch| after de-normalisation = {err:.2e}")
    assert a.shape == b.shape == (200, 300) and a.std() > 0 and err <= 1e-3


def test_predictor_backends_agree_on_stack(intensity_exported):
    from napari_pix2pix.predict import Predictor

    model_file, result = intensity_exported
    image, _ = nuclei_2d()
    stack = np.stack([image[:100, :150], image[100:200, 150:300]])
    config = TileConfig(tile=64, overlap=8)
    a = Predictor.load(model_file, config=config).predict(stack, output_dtype="float32")
    b = Predictor.load(result.path, backend="auto", config=config).predict(stack, output_dtype="float32")
    assert a.shape == b.shape == stack.shape and np.abs(a - b).max() <= 1e-3


def test_onnx_backend_refuses_train_mode_and_foreign_files(exported, tmp_path):
    from onnx import TensorProto, helper

    from napari_pix2pix.predict import Predictor

    _, result = exported
    with pytest.raises(Pix2PixError, match="eval mode"):
        Predictor.load(result.path, config=TileConfig(mode="train")).predict(np.zeros((32, 32), np.uint16))
    # a graph with other inputs than ours: refused on load, naming them
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8])
    m = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    graph = helper.make_graph([helper.make_node("Add", ["image", "mask"], ["y"])], "foreign", [x, m], [y])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    with pytest.raises(ModelFileError, match="unexpected inputs: 'image'.*'mask'"):
        Predictor.load(foreign)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        Predictor.load(garbage)
    with pytest.raises(Pix2PixError, match="export it first"):
        Predictor.load(tmp_path / "m.safetensors", backend="onnxruntime")


def test_bad_exports_explain_and_leave_nothing(tiny_model_file, tmp_path):
    import torch

    from napari_pix2pix.model import Pix2PixModel

    with pytest.raises(ExportError, match="not one of onnx, bioimageio"):
        export_model(tiny_model_file, tmp_path / "m.xyz", format="tflite")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="not a folder you can write to"):
        export_model(tiny_model_file, blocker / "sub" / "m.onnx")

    class Spectral(torch.nn.Module):  # aten::fft_rfft2 has no ONNX (opset 17) translation
        def forward(self, x):
            return torch.fft.irfft2(torch.fft.rfft2(x), s=x.shape[-2:])

    model = Pix2PixModel.load(tiny_model_file)
    model.generator = Spectral()
    with pytest.raises(ExportError, match="could not be exported to ONNX.*Fix:"):
        export_model(model, tmp_path / "spectral.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing partial left behind


def test_cli_export(tiny_model_file, tmp_path, capsys):
    from napari_pix2pix.cli import main

    out = tmp_path / "cli.onnx"
    assert main(["export", str(tiny_model_file), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file() and "measured max |difference|" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tiny_model_file), "--format", "tflite", "--out", str(out)])
    assert exc.value.code == 2


def test_dask_runs_the_onnx_predictor(intensity_exported):
    da = pytest.importorskip("dask.array")
    import pickle

    from napari_pix2pix.dask_inference import translate_dask
    from napari_pix2pix.predict import Predictor

    _, result = intensity_exported
    predictor = Predictor.load(result.path, config=TileConfig(tile=0, output_dtype="float32"))
    image, _ = nuclei_2d()
    stack = np.stack([image[:64, :96], image[64:128, :96]])
    lazy = translate_dask(predictor, da.from_array(stack, chunks=(1, 64, 96)), output_dtype="float32")
    assert np.array_equal(lazy.compute(scheduler="threads"), predictor.predict(stack))
    clone = pickle.loads(pickle.dumps(predictor))  # dask.distributed ships it to workers: the session is rebuilt
    assert np.array_equal(clone.predict(stack[0]), predictor.predict(stack[0]))
