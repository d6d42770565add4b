"""DistributedDataParallel: 2 CPU processes under torchrun (gloo) train in lock step.

The worker (tests/ddp_worker.py) saves every rank's generator/discriminator state; the ranks
must agree exactly (parameters are all-reduced, batch-norm buffers synchronised), rank 0 alone
writes the model file and only rank 0 reports step events.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from napari_pix2pix.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out: Path, steps: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(HERE / "ddp_worker.py"), str(out), str(steps)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_two_cpu_ranks_agree_and_rank0_alone_saves(tmp_path):
    proc = _torchrun(tmp_path, steps=4)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0.keys() == r1.keys()
    differ = [k for k in r0 if not torch.equal(r0[k], r1[k])]
    assert not differ, f"ranks disagree on {differ[:8]}"
    # the ranks trained on different patches (distributed sampling), yet hold the same weights
    b0, b1 = (torch.load(tmp_path / f"batch{r}.pt") for r in (0, 1))
    assert not torch.equal(b0, b1)
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert info[0]["world_size"] == info[1]["world_size"] == 2
    assert info[0]["step"] == info[1]["step"] == 4
    assert info[0]["steps_seen"] == [1, 2, 3, 4] and info[1]["steps_seen"] == []  # rank 0 alone reports
    assert not info[0]["dist_initialized_after"] and not info[1]["dist_initialized_after"]
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors")
    assert files == ["model.safetensors"]  # written once, by rank 0
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    assert ckpt.step == 4
    saved = {f"G.{k}": v for k, v in ckpt.generator.items()}
    assert all(torch.equal(saved[k], r0[k]) for k in saved)
