"""Tiled vs untiled translation: megapixels/s and peak memory (RSS) per image size.

    python benchmarks/inference.py           # 1024^2, 4096^2, 8192^2 (a few minutes on 2 CPU cores)
    python benchmarks/inference.py --quick   # 256^2 and 512^2 with a tiny model (seconds)

Every case runs in a fresh subprocess (``--child``) so that its peak RSS (VmHWM) is its own.
Images are single-channel uint16 (random texture), the model is the paper's U-Net architecture
unet_256 with ngf 32 instead of 64 (4x fewer FLOPs, so the 8192^2 case runs in about a minute
on a 2-core CPU; the memory pattern of tiling is the same). Untiled runs are skipped where their
activations would not fit (estimated above ``--untiled-limit-gb``). Timings include
normalisation, padding, blending and the dtype conversion back.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import _common  # noqa: F401
from _common import machine_line, peak_rss_mb, table


def _model(generator: str, ngf: int, device: str):
    import torch

    from napari_pix2pix.checkpoint import Checkpoint
    from napari_pix2pix.config import ModelConfig
    from napari_pix2pix.model import Pix2PixModel
    from napari_pix2pix.models import build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(generator=generator, ngf=ngf, ndf=ngf, in_channels=1, out_channels=1)
    return Pix2PixModel(Checkpoint(model=cfg, generator=build_generator(cfg).state_dict()), device=device)


def child(args) -> None:
    import numpy as np

    from napari_pix2pix.config import TileConfig
    from napari_pix2pix.inference import translate

    model = _model(args.generator, args.ngf, args.device)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, (args.size, args.size), dtype=np.uint16)
    cfg = TileConfig(tile=args.tile, overlap=args.overlap if args.tile else 0, batch_size=args.batch,
                     precision=args.precision, device=args.device)
    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    out = translate(model, image, config=cfg)
    seconds = time.perf_counter() - t0
    assert out.shape == image.shape and out.dtype == image.dtype
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base_rss}))


def untiled_gb(size: int, ngf: int) -> float:
    """Rough peak memory of an untiled U-Net forward (skips kept), ~ 3 * ngf * size^2 fp32 values;
    fitted to the measured 4.7 GB of unet_256 ngf 32 at 4096^2 on the CPU."""
    return 3 * ngf * size * size * 4 / 1e9 * 0.75


def run_case(args, size: int, tile: int, precision: str = "fp32") -> dict:
    cmd = [sys.executable, __file__, "--child", "--size", str(size), "--tile", str(tile),
           "--overlap", str(args.overlap), "--batch", str(args.batch), "--generator", args.generator,
           "--ngf", str(args.ngf), "--precision", precision, "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--batch", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--generator", default="unet_256")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--bf16", action="store_true", help="also run the tiled cases with bf16 autocast")
    p.add_argument("--device", default="cpu")
    p.add_argument("--untiled-limit-gb", type=float, default=12.0)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.sizes, args.tile, args.overlap, args.generator, args.ngf = [256, 512], 256, 32, "unet_32", 8
    print(machine_line())
    rows = []
    for size in args.sizes:
        cases = [("tiled", args.tile, "fp32")]
        if args.bf16:
            cases.append(("tiled", args.tile, "bf16"))
        if untiled_gb(size, args.ngf) <= args.untiled_limit_gb:
            cases.append(("untiled", 0, "fp32"))
        results = {}
        for kind, tile, prec in cases:
            r = run_case(args, size, tile, prec)
            results[(kind, prec)] = r
            if "error" in r:
                rows.append([f"{size}^2", kind, prec, "", "", "", r["error"]])
                continue
            mps = size * size / 1e6 / r["seconds"]
            rows.append([f"{size}^2", kind if not tile else f"tiled {tile}/{args.overlap}", prec, r["seconds"], mps,
                         r["peak_rss_mb"] / 1024, ""])
            print(rows[-1], flush=True)
        t, u = results.get(("tiled", "fp32")), results.get(("untiled", "fp32"))
        if t and u and "error" not in t and "error" not in u:
            rows.append([f"{size}^2", "tiled / untiled throughput", "", "", u["seconds"] / t["seconds"], "", ""])
        elif not u:
            rows.append([f"{size}^2", "untiled", "fp32", "", "", "",
                         f"skipped: ~{untiled_gb(size, args.ngf):.0f} GB estimated"])
    title = (f"Translation of single-channel uint16 images, {args.generator} ngf {args.ngf}, eval mode, "
             f"tile batch {args.batch}, device {args.device}; each case in a fresh process")
    print(table(["image", "mode", "precision", "seconds", "MP/s", "peak RSS GB", "note"], rows, title))


if __name__ == "__main__":
    main()
