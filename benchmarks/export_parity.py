"""Measured parity of the exported routes against torch, on this machine (CPU, fp32).

For the paper's generators (unet_256 and resnet_9blocks, ngf 64, random weights, batch norm) and a
real image (the bundled nuclei image, 16-bit): ONNX (onnxruntime) and TorchScript vs the torch
generator in model space, at 256x256 and 256x512; and the Predictor's torch and onnxruntime
backends after de-normalisation (tiled 256/32 on 512x512). Prints a Markdown table.

    PYTHONPATH=. python benchmarks/export_parity.py
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_pix2pix.checkpoint import Checkpoint
from napari_pix2pix.config import ModelConfig, TileConfig
from napari_pix2pix.data.normalize import fit_normalization
from napari_pix2pix.export import export_model
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.models import build_generator
from napari_pix2pix.predict import Predictor

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    import onnxruntime as ort

    image = tifffile.imread(REPO / "sample_data" / "nuclei-2d" / "img2d.tif")
    norm = fit_normalization([image[None]]).to_dict()
    rows = []
    generators = sys.argv[1:] or ["unet_256", "resnet_9blocks"]
    with tempfile.TemporaryDirectory() as tmp:
        for gen in generators:
            torch.manual_seed(0)
            cfg = ModelConfig(generator=gen, in_channels=1, out_channels=1, ngf=64)
            ckpt = Checkpoint(model=cfg, generator=build_generator(cfg).state_dict(),
                              data={"norm_a": norm, "norm_b": norm})
            path = Pix2PixModel(ckpt).save(Path(tmp) / f"{gen}.safetensors")
            model = Pix2PixModel.load(path)
            t0 = time.perf_counter()
            onnx_file = export_model(path, Path(tmp) / f"{gen}.onnx").path
            seconds = time.perf_counter() - t0
            session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
            for h, w in ((256, 256), (256, 512)):
                real = fit_normalization([image[None]])
                x = real.forward(image[None, :h, :w])[None].astype(np.float32)
                rand = np.random.default_rng(0).uniform(-1, 1, x.shape).astype(np.float32)
                for kind, inp in (("random", rand), ("real", x)):
                    with torch.no_grad():
                        ref = model.generator.eval()(torch.from_numpy(inp)).numpy()
                    err = float(np.abs(session.run(None, {"input": inp})[0] - ref).max())
                    rows.append((gen, f"{h}x{w}", kind, "onnxruntime vs torch (model space)", err))
            config = TileConfig(tile=256, overlap=32)
            a = Predictor.load(path, config=config).predict(image, output_dtype="float32")
            b = Predictor.load(onnx_file, config=config).predict(image, output_dtype="float32")
            rows.append((gen, "512x512 tiled", "real", "Predictor onnxruntime vs torch (data units)",
                         float(np.abs(a - b).max())))
            print(f"{gen}: export {seconds:.1f} s", file=sys.stderr)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}\n")
    print("| generator | size | input | comparison | max abs error |")
    print("|---|---|---|---|---|")
    for gen, size, kind, what, err in rows:
        print(f"| {gen} | {size} | {kind} | {what} | {err:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
