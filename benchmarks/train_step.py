"""Training-step throughput per precision mode, against a plain fp32 eager PyTorch baseline.

    python benchmarks/train_step.py            # full: unet_256 + 70x70 PatchGAN, 256^2, batch 1 and 16
    python benchmarks/train_step.py --quick    # seconds: tiny model, for smoke tests
    python benchmarks/train_step.py --compile  # also torch.compile (prints the compile time)

Everything is measured in one process, interleaved round by round, so ratios are side by side.
The baseline is a minimal pix2pix step written here with the same generator/discriminator
modules: fp32, contiguous layout, plain (for-loop) Adam, no augmentation or sampling. "ours" is
``Trainer.train_step`` (patch sampling + on-device augmentation included). FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` on one baseline step (forward + backward); the peak
is a large matmul measured in the same run. A second table trains each mode for the same number
of steps on the nuclei data and reports validation L1/PSNR/SSIM.
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
import torch.nn.functional as F

from _common import machine_line, matmul_peak, median, table


def synthetic_dataset(channels: int, size: int = 512, seed: int = 0):
    from napari_pix2pix.config import DataConfig
    from napari_pix2pix.data.sources import from_arrays

    rng = np.random.default_rng(seed)
    shape = (size, size, channels) if channels == 3 else (size, size)
    a = rng.integers(0, 255, shape, dtype=np.uint8)
    b = rng.integers(0, 255, shape, dtype=np.uint8)
    return from_arrays(a, b, DataConfig(a_is_labels=False, b_is_labels=False))


class Baseline:
    """The plain fp32 eager pix2pix step (what a minimal PyTorch script does)."""

    def __init__(self, model_config, batch: int, crop: int, device):
        from napari_pix2pix.models import build_discriminator, build_generator

        torch.manual_seed(0)
        self.G = build_generator(model_config).to(device)
        self.D = build_discriminator(model_config).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
        self.a = torch.rand(batch, model_config.in_channels, crop, crop, device=device) * 2 - 1
        self.b = torch.rand(batch, model_config.out_channels, crop, crop, device=device) * 2 - 1
        self.device = device

    def train_step(self):
        a, b, G, D = self.a, self.b, self.G, self.D
        fake = G(a)
        d_fake = D(torch.cat([a, fake.detach()], 1))
        d_real = D(torch.cat([a, b], 1))
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                        + F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        d_g = D(torch.cat([a, fake], 1))
        loss_g = F.binary_cross_entropy_with_logits(d_g, torch.ones_like(d_g)) + 100 * F.l1_loss(fake, b)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return loss_g.detach()


def count_flops(runner) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        runner.train_step()
    return counter.get_total_flops()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def speed_table(args, device) -> str:
    from napari_pix2pix.config import ModelConfig, TrainConfig
    from napari_pix2pix.training import Trainer

    channels = 3
    mc = ModelConfig(generator=args.generator, ngf=args.ngf, ndf=args.ngf, in_channels=channels,
                     out_channels=channels, discriminator_layers=3)
    dataset = synthetic_dataset(channels, size=max(2 * args.crop, 64))
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    if device.type == "cpu" and not torch.cpu._is_avx512_bf16_supported():
        print("note: this CPU has no native bf16 (AVX512-BF16/AMX); bf16 autocast runs emulated")
    peak32 = matmul_peak("float32", device.type, n=args.peak_n, seconds=args.peak_s)
    peak16 = matmul_peak("bfloat16", device.type, n=args.peak_n, seconds=args.peak_s)
    rows = []
    for batch in args.batches:
        runners = {"baseline fp32 eager": Baseline(mc, batch, args.crop, device)}
        flops = count_flops(runners["baseline fp32 eager"])
        compile_s = {}
        for prec in precisions:
            for cl in args.layouts:
                name = f"ours {prec}{' +channels_last' if cl else ''}"
                tc = TrainConfig(steps=10**6, batch_size=batch, crop=args.crop, device=str(device), precision=prec,
                                 channels_last=cl, preview_every=0)
                runners[name] = Trainer(mc, tc, dataset)
        if args.compile:
            tc = TrainConfig(steps=10**6, batch_size=batch, crop=args.crop, device=str(device), precision="bf16",
                             channels_last=True, compile=True, preview_every=0)
            runners["ours bf16 +channels_last +compile"] = Trainer(mc, tc, dataset)
        big = batch >= 8  # ~10 s per step at 256^2 on a small CPU: fewer repeats
        warmup, rounds, steps = (1, 2, 1) if big else (args.warmup, args.rounds, args.steps)
        for name, runner in runners.items():  # warm-up (and compile)
            t0 = time.perf_counter()
            runner.train_step()
            _sync(device)
            if "compile" in name:
                compile_s[name] = time.perf_counter() - t0
            for _ in range(warmup - 1):
                runner.train_step()
        times = {name: [] for name in runners}
        for _ in range(rounds):  # interleaved: every round runs every mode
            for name, runner in runners.items():
                for _ in range(steps):
                    _sync(device)
                    t0 = time.perf_counter()
                    runner.train_step()
                    _sync(device)
                    times[name].append(time.perf_counter() - t0)
        base = median(times["baseline fp32 eager"])
        for name, ts in times.items():
            t = median(ts)
            peak = peak16 if ("bf16" in name or "fp16" in name) else peak32
            rows.append([batch, name, t, 1 / t, batch / t, base / t, flops / t / 1e9,
                         f"{100 * flops / t / 1e9 / peak:.0f}%", f"{compile_s[name]:.0f} s" if name in compile_s else ""])
        print(f"batch {batch}: {flops / 1e9:.1f} GFLOP per step (FlopCounterMode, fwd+bwd of G and D)", flush=True)
        del runners
    title = (f"Training step, {args.generator} ngf {args.ngf} + 70x70 PatchGAN, {channels}->{channels} channels, "
             f"{args.crop}^2, device {device}; median of {args.rounds} interleaved rounds x {args.steps} steps "
             f"(batch >= 8: 2 x 1); "
             f"measured matmul peak fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    return table(["batch", "mode", "s/iter", "iter/s", "samples/s", "x baseline", "GFLOP/s", "of peak",
                  "compile"], rows, title)


def quality_table(args, device) -> str:
    import sys

    sys.path.insert(0, str(_common.REPO / "tests"))
    from _helpers import nuclei_2d

    from napari_pix2pix.config import DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import Trainer

    image, labels = nuclei_2d()
    train, val = from_arrays(labels, image, DataConfig()).split(0.25)  # mask -> image
    mc = ModelConfig(generator=args.q_generator, ngf=args.q_ngf, ndf=args.q_ngf, in_channels=1, out_channels=1)
    rows = []
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    for prec in precisions:
        for cl in args.layouts:
            tc = TrainConfig(steps=args.q_steps, batch_size=args.q_batch, crop=args.q_crop, device=str(device),
                             precision=prec, channels_last=cl, preview_every=0, seed=0)
            trainer = Trainer(mc, tc, train, val_dataset=val)
            t0 = time.perf_counter()
            trainer.run()
            m = trainer.validate()
            rows.append([f"{prec}{' +channels_last' if cl else ''}", args.q_steps, m["L1"], m["PSNR"], m["SSIM"],
                         time.perf_counter() - t0])
    title = (f"Quality after equal steps: nuclei mask -> image (shared StarDist 2-D pair, 25% validation rows), "
             f"{args.q_generator} ngf {args.q_ngf}, crop {args.q_crop}, batch {args.q_batch}, seed 0, device {device}")
    return table(["mode", "steps", "val L1 (model units)", "val PSNR dB", "val SSIM", "seconds"], rows, title)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model and few steps (smoke test, seconds)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--compile", action="store_true", help="add a torch.compile row (with its compile time)")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--q-steps", type=int, default=150)
    args = p.parse_args(argv)
    args.generator, args.ngf, args.crop = "unet_256", 64, 256
    args.rounds, args.steps, args.warmup, args.peak_n, args.peak_s = 3, 2, 2, 2048, 2.0
    args.q_generator, args.q_ngf, args.q_crop, args.q_batch = "unet_128", 32, 128, 4
    args.layouts = (False, True)
    if args.quick:
        args.generator, args.ngf, args.crop, args.batches, args.layouts = "unet_32", 8, 32, [1], (False,)
        args.rounds, args.steps, args.warmup, args.peak_n, args.peak_s = 1, 1, 1, 256, 0.2
        args.q_generator, args.q_ngf, args.q_crop, args.q_batch, args.q_steps = "unet_32", 8, 32, 2, 2
    from napari_pix2pix.devices import resolve_device

    device = resolve_device(args.device)
    torch.manual_seed(0)
    print(machine_line())
    print(speed_table(args, device), flush=True)
    if not args.skip_quality:
        print(quality_table(args, device), flush=True)


if __name__ == "__main__":
    main()
