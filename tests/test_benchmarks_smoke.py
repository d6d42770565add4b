"""Each benchmark script runs end to end in its reduced (--quick) mode and prints its table.
These are smoke tests, not timings: the numbers themselves are in benchmarks/RESULTS.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *extra: str, timeout: int = 240) -> str:
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", *extra], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_train_step_quick():
    out = _run("train_step.py")
    assert "baseline fp32 eager" in out and "ours bf16" in out and "x baseline" in out and "val PSNR" in out


def test_inference_quick():
    out = _run("inference.py")
    assert "MP/s" in out and "untiled" in out and "peak RSS" in out


def test_import_time_quick():
    out = _run("import_time.py")
    assert "| torch  | False" in out


@pytest.mark.gui
@pytest.mark.skipif(not (os.environ.get("DISPLAY") or shutil.which("xvfb-run")), reason="needs a display or xvfb-run")
def test_gui_stalls_quick():
    pytest.importorskip("napari")
    out = _run("gui_stalls.py", "--no-busy", timeout=600)
    assert "Longest event-loop stall per action" in out and "| train " in out and "| D map " in out
