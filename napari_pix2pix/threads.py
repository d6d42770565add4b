"""One thread policy for CPU work (training and translation), used by every face.

torch's intra-op threads spin while they wait for each other; when another process (or
napari's GUI thread) holds a core, a step with more threads than free cores can run many times
slower than with one. So the policy counts the cores this process may really use — CPU
affinity (``os.sched_getaffinity``) and the cgroup CPU quota (``cpu.max`` or
``cpu.cfs_quota_us``), never ``os.cpu_count()`` — subtracts the ones other processes' runnable
threads hold right now (this process's own threads are not counted) and one for a GUI thread,
and gives every free core, except to tiny models whose per-step work is too small to split.
During training ``auto`` is asked again every 10 s (``training.adapt.AdaptThreads``), since
the load changes; an explicit number is never changed.

Measured on a quiet 2-core AMD EPYC (benchmarks/RESULTS.md): unet_128 ngf 16 at 128^2
(1.9 GFLOP/step) runs 1.42x faster on 2 threads than on 1; with one competing busy process,
1 thread is 3x faster than 2.

>>> choose_threads(work=10.0, cores=3, busy=0).intra
3
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

# work per step (GFLOP, forward + backward of G and D) below which one thread is the fastest even
# on idle cores: the per-layer work of such models is too small to split between threads
SMALL_WORK_GFLOP = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    intra: int
    reason: str  # e.g. "auto: small model, 2 cores, GUI" or "set"

    def line(self, steps_per_s: float | None = None) -> str:
        """``threads 1 (auto: small model, 2 cores, GUI) · 6.8 steps/s``."""
        speed = f" · {steps_per_s:.1f} steps/s" if steps_per_s is not None else ""
        return f"threads {self.intra} ({self.reason}){speed}"


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike = "/proc/self/cgroup"
                     ) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited or unknown.
    Reads cgroup v2 ``cpu.max`` up the hierarchy, else v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``."""
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, rel = parts[1], parts[2].lstrip("/")
        if controllers == "":  # v2 unified hierarchy: every level up to the root may limit
            folder = root / rel
            while True:
                limits.append(_read_v2(folder / "cpu.max"))
                if folder == root or root not in folder.parents:
                    break
                folder = folder.parent
        elif "cpu" in controllers.split(","):
            for name in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                base = root / name
                if base.is_dir():
                    limits.append(_read_v1(base / rel))
                    limits.append(_read_v1(base))
                    break
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def _read_v2(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _read_v1(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 0.01)))
    return max(1, cores)


def _procs_running(path) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("procs_running"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def own_running(tasks: str | os.PathLike = "/proc/self/task") -> int:
    """Runnable threads of this process (state ``R`` in ``/proc/self/task/*/stat``), at least 1:
    the thread reading them is running."""
    running = 0
    try:
        entries = list(Path(tasks).iterdir())
    except OSError:
        return 1
    for task in entries:
        try:  # "pid (name) S ...": the state follows the last ')' (names may hold spaces and ')')
            running += (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(1, running)


def busy_elsewhere(path: str | os.PathLike = "/proc/stat", tasks: str | os.PathLike = "/proc/self/task",
                   samples: int = 5, interval: float = 0.01) -> int:
    """Runnable threads of *other* processes right now, 0 if unknown: ``procs_running`` (every
    runnable thread on the machine) minus this process's own runnable threads (torch's spinning
    intra-op threads and the reader among them), the median of ``samples`` reads ``interval``
    seconds apart so that a process starting or ending for a moment does not decide."""
    import time

    seen = []
    for i in range(max(1, samples)):
        if i:
            time.sleep(interval)
        total = _procs_running(path)
        if total is None:
            return 0
        seen.append(max(0, total - own_running(tasks)))
    return sorted(seen)[len(seen) // 2]


def work_per_step(model, crop: int, batch: int, generator=None, discriminator=None) -> float | None:
    """Estimated GFLOP of one training step (forward and backward of G, three D passes).

    Convolution FLOPs counted by forward hooks on one eval-mode pass of the smallest input the
    generator takes (no state changes, no random numbers), scaled to ``crop`` and ``batch``.
    Pass the run's networks to avoid building them; None if counting fails."""
    import json

    key = (json.dumps(model.to_dict(), sort_keys=True), int(crop), int(batch))
    if key not in _WORK:
        _WORK[key] = _count(model, int(crop), int(batch), generator, discriminator)
    return _WORK[key]


_WORK: dict = {}


def _forward_flops(module, x):
    """FLOPs of the convolutions in one forward pass (2 x MACs, from forward hooks)."""
    import torch

    total = [0]

    def hook(layer, inputs, output):
        weight = layer.weight
        if isinstance(layer, torch.nn.ConvTranspose2d):  # every input pixel meets the whole kernel
            total[0] += 2 * inputs[0].numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        else:
            total[0] += 2 * output.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return total[0], out


def _count(model, crop: int, batch: int, G, D) -> float | None:
    try:
        import torch

        from .models import build_discriminator, build_generator

        G = G if G is not None else build_generator(model)
        D = D if D is not None else build_discriminator(model)
        side = max(model.size_multiple, 32)
        dev = next(G.parameters()).device
        modes = G.training, D.training
        G.eval()
        D.eval()
        try:
            with torch.no_grad():
                a = torch.zeros(1, model.in_channels, side, side, device=dev)
                g_flops, fake = _forward_flops(G, a)
                d_flops, _ = _forward_flops(D, torch.cat([a, fake], 1))
        finally:
            G.train(modes[0])
            D.train(modes[1])
        return 3 * batch * (crop / side) ** 2 * (g_flops + 3 * d_flops) / 1e9
    except Exception:  # noqa: BLE001 - an estimate only; the policy then uses the core count
        return None


def choose_threads(setting="auto", *, work: float | None = None, cores: int | None = None,
                   busy: int | None = None, gui: bool = False) -> ThreadChoice:
    """Intra-op threads for ``setting`` (``'auto'`` or a number, which wins). ``work``: GFLOP per
    step (:func:`work_per_step`); ``cores``/``busy``: as :func:`usable_cores` / :func:`busy_elsewhere`
    (read when None); ``gui``: a GUI thread in this process needs a core."""
    if setting not in (None, "auto"):
        return ThreadChoice(max(1, int(setting)), "set")
    cores = usable_cores() if cores is None else cores
    reserve = 1 if gui and cores > 1 else 0  # a GUI thread needs a core to stay responsive
    small = work is not None and work < SMALL_WORK_GFLOP
    if busy is None:  # read the load (~40 ms) only where it can change the answer
        busy = 0 if small or cores - reserve <= 1 else busy_elsewhere()
    # other processes' runnable threads hold cores (GUI stalls of ~1 s and steps 10x slower were
    # measured when training took a core another process was running on)
    free = max(1, cores - min(busy, cores - 1) - reserve)
    threads = 1 if small else free
    notes = ["small model" if small else "model %.1f GFLOP/step" % work if work is not None else None,
             f"{cores} core{'s' if cores != 1 else ''}", f"{busy} busy" if busy else None, "GUI" if gui else None]
    return ThreadChoice(threads, "auto: " + ", ".join(n for n in notes if n))


def apply_threads(choice: ThreadChoice):
    """Set torch's intra-op threads; returns a function that restores the previous setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(choice.intra)
    return lambda: torch.set_num_threads(before)
