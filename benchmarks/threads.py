"""Steps/s for threads = 1, all usable cores and auto; a small and the default model; each
unloaded and with one competing busy process. Prints the table and auto / best per cell.

    python benchmarks/threads.py            # unet_128 ngf 16 crop 128, and unet_256 ngf 64 crop 256
    python benchmarks/threads.py --quick    # fewer steps, the small model only
    python benchmarks/threads.py --midrun 60   # "competitor starts mid-run": auto vs fixed 2 threads

Each cell alternates the thread counts over ``--rounds`` rounds and reports medians. Auto's choice
is made in the cell's own conditions (after the competitor has started). Goal (issue 13): auto >=
0.9 x the best in every cell. "Unloaded" means no competitor started
by this script; the table states the load average, since other processes may be running.

``--midrun SECONDS``: the small model trains through ``Trainer.events()`` for SECONDS with
``threads=auto`` and then with a fixed count of all usable cores; a third of the way in a busy
process starts. The table gives steps/s before and after it started, the threads at the end and
auto's switches (auto re-reads the load every 10 s and switches after two agreeing reads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch

from _common import machine_line, table

MODELS = {"small (unet_128 ngf 16, 128^2)": ("unet_128", 16, 16, 128),
          "default (unet_256 ngf 64, 256^2)": ("unet_256", 64, 64, 256)}


def trainer_for(spec, **train):
    from napari_pix2pix.config import DataConfig, ModelConfig, TrainConfig
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import Trainer

    generator, ngf, ndf, crop = spec
    a = np.random.default_rng(0).random((crop * 2, crop * 2)).astype(np.float32)
    data = from_arrays(a, np.sqrt(a), DataConfig(a_is_labels=False, b_is_labels=False))
    mc = ModelConfig(generator=generator, ngf=ngf, ndf=ndf, in_channels=1, out_channels=1)
    config = TrainConfig(steps=10**6, crop=crop, batch_size=1, device="cpu", preview_every=0, validate_every=0,
                         **train)
    return Trainer(mc, config, data)


def midrun(spec, threads: str, seconds: float) -> list:
    """Train for ``seconds``; a busy process starts a third of the way in. One table row."""
    from napari_pix2pix.training import StepEvent, ThreadsEvent

    trainer = trainer_for(spec, threads=threads, time_limit=seconds, log_every=50)
    start_at, busy, t_busy, steps_busy, switches = seconds / 3, None, None, None, []
    t0 = time.perf_counter()
    try:
        for event in trainer.events():
            now = time.perf_counter() - t0
            if isinstance(event, StepEvent):
                if busy is None and now >= start_at:
                    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    t_busy, steps_busy = now, event.step
            elif isinstance(event, ThreadsEvent):
                switches.append(f"{now:.0f} s: {event.before} -> {event.after}")
        end, steps = time.perf_counter() - t0, trainer.step
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait()
    if t_busy is None:
        t_busy, steps_busy = end, steps
    before = steps_busy / t_busy
    after = (steps - steps_busy) / max(end - t_busy, 1e-9)
    return [threads, f"{os.getloadavg()[0]:.1f}", before, after, steps, trainer.threads.line(),
            "; ".join(switches) or "none"]


def rate(trainer, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    trainer.train_step(readout=False)  # warm-up at this thread count
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(readout=False)
    return steps / (time.perf_counter() - t0)


def rates(trainer, counts, steps: int, rounds: int) -> dict:
    """Median steps/s per thread count, the counts alternated in every round (load drifts)."""
    seen = {n: [] for n in counts}
    for _ in range(rounds):
        for n in counts:
            seen[n].append(rate(trainer, n, steps))
    return {n: float(np.median(v)) for n, v in seen.items()}


def main(argv=None) -> None:
    from napari_pix2pix.threads import choose_threads, usable_cores

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--rounds", type=int, default=3, help="alternated rounds per cell (median reported)")
    p.add_argument("--midrun", type=float, default=0.0, metavar="SECONDS",
                   help="only the 'competitor starts mid-run' cell: auto vs all cores, SECONDS each")
    args = p.parse_args(argv)
    if args.midrun:
        print(machine_line())
        spec = list(MODELS.values())[0]
        rows = [midrun(spec, t, args.midrun) for t in ("auto", str(usable_cores()))]
        print(table(["threads", "loadavg at end", "steps/s before", "steps/s after competitor", "steps",
                     "threads at the end", "auto's switches"], rows))
        return
    models = dict(list(MODELS.items())[:1]) if args.quick else MODELS
    cores = usable_cores()
    print(machine_line())
    rows = []
    for name, spec in models.items():
        trainer = trainer_for(spec)
        steps = args.steps or (5 if args.quick else (20 if spec[0] == "unet_128" else 4))
        for load in ("unloaded", "1 busy process"):
            busy = None
            if load != "unloaded":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(1.0)
            try:
                choice = choose_threads("auto", work=trainer.work, cores=cores)
                measured = rates(trainer, sorted({1, cores, choice.intra}), steps, args.rounds)
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.wait()
            best = max(measured.values())
            auto = measured[choice.intra]
            rows.append([name, load, f"{os.getloadavg()[0]:.1f}", measured[1], measured[cores], auto,
                         choice.line(), auto / best, "met" if auto >= 0.9 * best else "missed"])
    print(table(["model", "load", "loadavg", "1 thread steps/s", f"{cores} threads steps/s", "auto steps/s",
                 "auto's choice", "auto / best", "goal >= 0.9"], rows))


if __name__ == "__main__":
    main()
