"""Our training step against a reference step, side by side in one process.

    python benchmarks/vs_reference.py            # unet_256 ngf 64 + 70x70 PatchGAN, 256^2, batch 1
    python benchmarks/vs_reference.py --quick    # unet_128 ngf 16, 128^2: minutes on a loaded 2-core CPU

The reference step is written here from the paper's documented semantics (not copied from any
implementation): fake = G(A); D updated on cat(A, fake.detach()) and cat(A, B) with the D loss
halved (binary cross-entropy with logits); then G updated with the cGAN loss against the updated
D plus 100 * L1; ``torch.optim.Adam(lr=2e-4, betas=(0.5, 0.999))`` with torch's default
implementation, and a variant with ``fused=True``. Ours is ``Trainer.train_step`` (its finite
guard, rollback copy, LambdaLR, losses read at log intervals) fed the same batch.

All variants start from identical weights and see identical data; the first iteration's losses
must agree to 1e-5 (so the work is equal). Then they alternate: a warm-up, then ``--rounds``
rounds in which every variant runs ``--steps`` steps. Ratios are reference time / our time
(> 1: ours is faster), min / median / max over rounds.
"""

from __future__ import annotations

import argparse
import copy
import time

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
import torch.nn.functional as F

from _common import machine_line, table


class Reference:
    """The paper's step, plainly."""

    def __init__(self, G, D, fused: bool):
        self.G, self.D = copy.deepcopy(G), copy.deepcopy(D)
        kw = {"fused": True} if fused else {}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)

    def step(self, a, b):
        G, D = self.G, self.D
        fake = G(a)
        pred_fake = D(torch.cat([a, fake.detach()], 1))
        pred_real = D(torch.cat([a, b], 1))
        d_fake = F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
        d_real = F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
        self.opt_d.zero_grad()
        (0.5 * (d_fake + d_real)).backward()
        self.opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        pred = D(torch.cat([a, fake], 1))
        g_gan = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
        g_l1 = F.l1_loss(fake, b) * 100
        self.opt_g.zero_grad()
        (g_gan + g_l1).backward()
        self.opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return {"G_GAN": g_gan.detach(), "G_L1": g_l1.detach(), "D_real": d_real.detach(), "D_fake": d_fake.detach()}


def build(args):
    from napari_pix2pix.config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import Trainer

    rng = np.random.default_rng(0)
    a = rng.random((args.crop * 2, args.crop * 2)).astype(np.float32)
    data = from_arrays(a, np.sqrt(a), DataConfig(a_is_labels=False, b_is_labels=False))
    mc = ModelConfig(generator=args.generator, ngf=args.ngf, ndf=args.ndf, in_channels=1, out_channels=1)
    ours = {}
    for prec in ("fp32",) + (() if args.no_bf16 else ("bf16",)):
        tc = TrainConfig(steps=10**6, decay_steps=0, crop=args.crop, batch_size=args.batch, precision=prec,
                         device="cpu", preview_every=0, log_every=10, threads=args.threads,
                         augment=AugmentConfig(jitter=False, flip=False))
        ours[prec] = Trainer(mc, tc, data)
    batch = ours["fp32"]._batch()
    for t in ours.values():
        t._batch = lambda: batch  # identical data for every variant
    G, D = ours["fp32"].generator, ours["fp32"].discriminator
    refs = {"reference fp32": Reference(G, D, fused=False), "reference fp32 fused Adam": Reference(G, D, fused=True)}
    return ours, refs, batch


def first_losses_agree(ours, refs, batch) -> float:
    rng = torch.get_rng_state()
    mine = ours["fp32"].train_step(readout=True)
    worst = 0.0
    for ref in refs.values():
        torch.set_rng_state(rng)  # the same dropout draws
        theirs = {k: float(v) for k, v in ref.step(*batch).items()}
        worst = max(worst, max(abs(mine[k] - theirs[k]) for k in theirs))
    return worst


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    p.add_argument("--threads", default="auto")
    p.add_argument("--no-bf16", action="store_true",
                   help="skip ours bf16 (on CPUs without AVX-512 BF16 or AMX it is emulated and 5-10x slower)")
    args = p.parse_args(argv)
    args.generator, args.ngf, args.ndf, args.crop, args.batch = "unet_256", 64, 64, 256, 1
    if args.quick:
        args.generator, args.ngf, args.ndf, args.crop = "unet_128", 16, 16, 128
    args.threads = int(args.threads) if str(args.threads).isdigit() else args.threads
    from napari_pix2pix.threads import apply_threads, choose_threads, work_per_step
    from napari_pix2pix.config import ModelConfig

    choice = choose_threads(args.threads, work=work_per_step(
        ModelConfig(generator=args.generator, ngf=args.ngf, ndf=args.ndf, in_channels=1, out_channels=1),
        args.crop, args.batch))
    apply_threads(choice)
    print(machine_line())
    print(choice.line())
    torch.manual_seed(0)
    ours, refs, batch = build(args)
    diff = first_losses_agree(ours, refs, batch)
    print(f"first iteration: largest loss difference ours vs reference {diff:.2e} "
          f"({'OK' if diff <= 1e-5 else 'NOT EQUAL'}: <= 1e-5 required)")
    variants = {"ours fp32": lambda: ours["fp32"].train_step(readout=False),
                **({} if args.no_bf16 else {"ours bf16": lambda: ours["bf16"].train_step(readout=False)}),
                **{name: (lambda r=r: r.step(*batch)) for name, r in refs.items()}}
    for fn in variants.values():  # warm-up
        fn()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - t0) / args.steps)
    rows = [[name, min(ts), float(np.median(ts)), max(ts)] for name, ts in times.items()]
    print(table(["variant", "min s/step", "median s/step", "max s/step"], rows,
                f"{args.generator} ngf {args.ngf} ndf {args.ndf}, 1->1 channels, {args.crop}^2, batch {args.batch}, "
                f"CPU, {args.rounds} rounds x {args.steps} steps, alternated"))
    ratios = []
    for label, ref, mine, goal in (("ours fp32 vs reference fp32", "reference fp32", "ours fp32", 1.25),
                                   ("ours fp32 vs reference fused Adam", "reference fp32 fused Adam", "ours fp32", 1.05),
                                   ("ours bf16 vs reference fp32", "reference fp32", "ours bf16", 2.0)):
        if mine not in times:
            continue
        per_round = [r / m for r, m in zip(times[ref], times[mine])]
        med = float(np.median(per_round))
        ratios.append([label, min(per_round), med, max(per_round), f">= {goal}", "met" if med >= goal else
                       f"missed by {goal - med:.2f}"])
    print(table(["ratio (reference / ours)", "min", "median", "max", "goal", "result"], ratios))


if __name__ == "__main__":
    main()
