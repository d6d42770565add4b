"""Shared helpers for the benchmark scripts: machine description, tables, peak FLOP/s."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line() -> str:
    """One line naming the machine, for tables and RESULTS.md."""
    import torch

    flags = cpu_flags()
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f in flags]
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = ""
    if torch.cuda.is_available():
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load avg {os.getloadavg()[0]:.1f}"
    return (f"{cpu_model()} ({os.cpu_count()} logical CPUs; {' '.join(isa) or 'no AVX-512'}){mem}{gpu}; "
            f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; python "
            f"{platform.python_version()}{load}")


def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    """A GitHub-markdown table (also readable as plain text)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines.append(f"\n{title}\n")
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def matmul_peak(dtype_name: str = "float32", device: str = "cpu", n: int = 2048, seconds: float = 2.0) -> float:
    """Measured matmul throughput in GFLOP/s (best of repeated n x n products)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    best = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (a @ b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
