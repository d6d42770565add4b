#!/usr/bin/env python
"""Parameter counts of every generator per ``upsample`` variant (the README's table).

    python benchmarks/param_counts.py            # markdown table, 3 -> 3 channels, ngf 64, batch norm
    python benchmarks/param_counts.py --ngf 16 --in-channels 1 --out-channels 1

Counts trainable parameters only (no running statistics); built without initialisation, so it
takes a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def counts(ngf: int = 64, in_channels: int = 3, out_channels: int = 3, norm: str = "batch") -> dict:
    """{(generator, upsample): parameters}."""
    from napari_pix2pix.config import GENERATOR_CHOICES, UPSAMPLE_CHOICES, ModelConfig
    from napari_pix2pix.models import build_generator, count_parameters

    return {(g, u): count_parameters(build_generator(ModelConfig(generator=g, upsample=u, ngf=ngf, norm=norm,
                                                                 in_channels=in_channels,
                                                                 out_channels=out_channels), init=False))
            for g in GENERATOR_CHOICES for u in UPSAMPLE_CHOICES}


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--out-channels", type=int, default=3)
    p.add_argument("--norm", default="batch")
    args = p.parse_args(argv)
    from napari_pix2pix.config import UPSAMPLE_CHOICES

    c = counts(args.ngf, args.in_channels, args.out_channels, args.norm)
    gens = list(dict.fromkeys(g for g, _ in c))
    lines = [f"Generator parameters, ngf {args.ngf}, {args.in_channels} -> {args.out_channels} channels, "
             f"norm {args.norm}:", "",
             "| generator | " + " | ".join(f"`{u}`" for u in UPSAMPLE_CHOICES) + " | resize / transposed |",
             "|---|" + "---:|" * len(UPSAMPLE_CHOICES) + "---:|"]
    for g in gens:
        ratio = c[(g, "bilinear")] / c[(g, "transposed")]
        lines.append(f"| {g} | " + " | ".join(f"{c[(g, u)]:,}" for u in UPSAMPLE_CHOICES) + f" | {ratio:.2f} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
