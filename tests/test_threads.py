"""The thread policy's decisions: cores from affinity and the cgroup quota (not os.cpu_count),
busy cores, the GUI's core, small models on one thread, and an explicit number always wins."""

from __future__ import annotations

import os

import pytest

from napari_pix2pix import threads
from napari_pix2pix.config import TileConfig, TrainConfig
from napari_pix2pix.errors import ConfigError


def _cgroup_v2(tmp_path, cpu_max: str | None, parent_max: str | None = None):
    root = tmp_path / "cg"
    leaf = root / "user.slice" / "job"
    leaf.mkdir(parents=True)
    if cpu_max is not None:
        (leaf / "cpu.max").write_text(cpu_max + "\n")
    if parent_max is not None:
        (root / "user.slice" / "cpu.max").write_text(parent_max + "\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user.slice/job\n")
    return root, proc


def test_cgroup_v2_quota_is_read_and_the_tightest_level_wins(tmp_path):
    root, proc = _cgroup_v2(tmp_path, "150000 100000", parent_max="100000 100000")
    assert threads.cgroup_cpu_limit(root, proc) == 1.0
    root, proc = _cgroup_v2(tmp_path / "b", "max 100000")
    assert threads.cgroup_cpu_limit(root, proc) is None


def test_cgroup_v1_quota_is_read(tmp_path):
    base = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "x"
    base.mkdir(parents=True)
    (base / "cpu.cfs_quota_us").write_text("250000\n")
    (base / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "cgroup"
    proc.write_text("4:cpu,cpuacct:/docker/x\n")
    assert threads.cgroup_cpu_limit(tmp_path / "cg", proc) == 2.5


def test_usable_cores_takes_affinity_and_quota_not_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.usable_cores() == 4
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 1.5)
    assert threads.usable_cores() == 2  # a 1.5-core quota can keep 2 threads busy part of the time
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)
    assert threads.usable_cores() == 1


def test_busy_processes_are_read_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n")
    assert threads.busy_elsewhere(stat) == 2
    assert threads.busy_elsewhere(tmp_path / "missing") == 0


def test_auto_choices():
    big = 90.0  # GFLOP per step: unet_256 ngf 64 at 256^2
    assert threads.choose_threads(work=big, cores=4, busy=0).intra == 4
    assert threads.choose_threads(work=big, cores=4, busy=0, gui=True).intra == 3  # the GUI keeps a core
    assert threads.choose_threads(work=big, cores=2, busy=1).intra == 1  # a competing process holds one
    assert threads.choose_threads(work=big, cores=1, busy=5, gui=True).intra == 1  # never below one
    small = threads.choose_threads(work=0.5, cores=8, busy=0)
    assert small.intra == 1 and "small model" in small.reason
    assert threads.choose_threads(work=10.0, cores=8, busy=0).intra == 2  # ~4 GFLOP per thread
    line = threads.choose_threads(work=0.5, cores=2, busy=0, gui=True).line(6.8)
    assert line == "threads 1 (auto: small model, 2 cores, GUI) · 6.8 steps/s"


def test_an_explicit_number_wins():
    choice = threads.choose_threads(3, work=0.1, cores=1, busy=9, gui=True)
    assert choice.intra == 3 and choice.reason == "set"


def test_threads_option_in_the_configs():
    assert TrainConfig(threads="2").threads == "2" and TileConfig(threads=1).threads == "1"  # kept as text
    assert TrainConfig().threads == "auto"
    for bad in ("many", 0, -1, True):
        with pytest.raises(ConfigError, match="threads"):
            TrainConfig(threads=bad)


def test_work_estimate_counts_convolutions():
    from napari_pix2pix.config import ModelConfig

    small = threads.work_per_step(ModelConfig(generator="unet_32", ngf=8, ndf=8, in_channels=1, out_channels=1), 32, 2)
    larger = threads.work_per_step(ModelConfig(generator="unet_32", ngf=8, ndf=8, in_channels=1, out_channels=1), 64, 2)
    assert 0 < small and larger == pytest.approx(4 * small)


def test_trainer_applies_and_restores_the_choice(one_torch_thread):
    import numpy as np
    import torch

    from _helpers import tiny_model, tiny_train
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import SpeedEvent, Trainer

    a = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    trainer = Trainer(tiny_model(), tiny_train(steps=3, log_every=1, threads=2), from_arrays(a, 1 - a))
    seen = []
    for event in trainer.events():
        seen.append(torch.get_num_threads())
        if isinstance(event, SpeedEvent):
            assert event.line.startswith("threads 2 (set) · ")
    assert seen[0] == 2 and torch.get_num_threads() == 1
