"""What ``import napari_pix2pix`` costs, and proof that it does not import torch.

    python benchmarks/import_time.py [--quick] [--repeat N]

Each measurement is a fresh interpreter: ``python -X importtime -c "import napari_pix2pix"``
(the self+cumulative time the import system reports for the package), and the wall time of
``python -c "import napari_pix2pix"`` minus that of ``python -c "pass"``. ``sys.modules`` is
checked for torch, numpy, napari and Qt after the import.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import _common  # noqa: F401
from _common import machine_line, median, table

CHECK = ("import sys, json, napari_pix2pix; "
         "print(json.dumps({m: m in sys.modules for m in ('torch', 'numpy', 'napari', 'qtpy', 'PyQt6', 'kornia')}))")


def importtime_us(repeat: int) -> list[int]:
    out = []
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import napari_pix2pix"],
                              capture_output=True, text=True, check=True)
        for line in proc.stderr.splitlines():
            parts = [x.strip() for x in line.split("|")]
            if len(parts) == 3 and parts[2] == "napari_pix2pix":
                out.append(int(parts[1]))
    return out


def wall_ms(code: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    print(machine_line())
    cum = importtime_us(repeat)
    base = wall_ms("pass", repeat)
    pkg = wall_ms("import napari_pix2pix", repeat)
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    added = [p_ - b for p_, b in zip(sorted(pkg), sorted(base))]
    rows = [["-X importtime cumulative (napari_pix2pix)", median(cum) / 1000, min(cum) / 1000],
            ["wall: python -c pass", median(base), min(base)],
            ["wall: python -c 'import napari_pix2pix'", median(pkg), min(pkg)],
            ["added by the import (wall difference)", median(added), min(added)]]
    print(table(["measure", "median ms", "min ms"], rows, f"import napari_pix2pix, {repeat} fresh interpreters each"))
    print(table(["module", "in sys.modules after the import"], [[k, v] for k, v in loaded.items()]))
    if loaded["torch"]:
        sys.exit("FAIL: importing napari_pix2pix imported torch")


if __name__ == "__main__":
    main()
