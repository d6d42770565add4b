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


def _tasks(tmp_path, states):
    tasks = tmp_path / "task"
    for i, state in enumerate(states):
        (tasks / str(100 + i)).mkdir(parents=True)
        (tasks / str(100 + i) / "stat").write_text(f"{100 + i} (pt main) thread) {state} 1 2 3\n")
    return tasks


def test_busy_counts_other_processes_not_this_ones_own_threads(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n")
    # the reader and two spinning intra-op threads of this process: nothing else runs
    assert threads.busy_elsewhere(stat, _tasks(tmp_path / "a", "RRRS"), interval=0) == 0
    # only the reader runs here: two threads of other processes are runnable
    assert threads.busy_elsewhere(stat, _tasks(tmp_path / "b", "RSS"), interval=0) == 2
    assert threads.own_running(_tasks(tmp_path / "c", "SS")) == 1  # the reader itself always runs
    assert threads.busy_elsewhere(tmp_path / "missing", _tasks(tmp_path / "d", "R")) == 0


def test_busy_is_the_median_of_several_reads(tmp_path, monkeypatch):
    reads = iter([5, 1, 1])
    monkeypatch.setattr(threads, "_procs_running", lambda path: next(reads))
    monkeypatch.setattr(threads, "own_running", lambda tasks: 1)
    assert threads.busy_elsewhere(samples=3, interval=0) == 0  # a process that ran for one read only


def test_auto_choices():
    big = 90.0  # GFLOP per step: unet_256 ngf 64 at 256^2
    assert threads.choose_threads(work=big, cores=4, busy=0).intra == 4
    assert threads.choose_threads(work=big, cores=4, busy=0, gui=True).intra == 3  # the GUI keeps a core
    assert threads.choose_threads(work=big, cores=2, busy=1).intra == 1  # a competing process holds one
    assert threads.choose_threads(work=big, cores=4, busy=9).intra == 1  # however many compete, one thread
    assert threads.choose_threads(work=big, cores=1, busy=5, gui=True).intra == 1  # never below one
    # a small model (unet_128 ngf 16, 128^2: 1.9 GFLOP) gets every free core when nothing else runs:
    # measured 1.42x faster on two threads than one on a quiet 2-core machine
    assert threads.choose_threads(work=1.9, cores=2, busy=0).intra == 2
    assert threads.choose_threads(work=None, cores=2, busy=0).intra == 2  # translation: no estimate
    tiny = threads.choose_threads(work=0.05, cores=8, busy=0)
    assert tiny.intra == 1 and "small model" in tiny.reason
    line = threads.choose_threads(work=1.9, cores=2, busy=0, gui=True).line(6.8)
    assert line == "threads 1 (auto: model 1.9 GFLOP/step, 2 cores, GUI) · 6.8 steps/s"
    assert threads.choose_threads(work=0.05, cores=2, busy=1, gui=True).line() == \
        "threads 1 (auto: small model, 2 cores, 1 busy, GUI)"


def test_auto_reads_affinity_quota_and_load_when_not_given(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 3.0)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 1)
    choice = threads.choose_threads(work=50.0)
    assert choice.intra == 2 and "3 cores, 1 busy" in choice.reason  # quota 3, one held by another process


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


def test_the_load_is_read_only_where_it_can_change_the_answer(monkeypatch):
    reads = []
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: reads.append(1) or 1)
    assert threads.choose_threads(work=0.05, cores=4).intra == 1  # tiny model: one thread anyway
    assert threads.choose_threads(work=50.0, cores=2, gui=True).intra == 1  # the GUI's core leaves one
    assert threads.choose_threads(work=50.0, cores=1).intra == 1
    assert reads == []
    assert threads.choose_threads(work=50.0, cores=4).intra == 3 and reads == [1]


# ------------------------------------------------------------------ adaptive re-checks (auto only)
class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Trainer:
    threads = None


def _adapt(busy: list, set_to: list):
    """An AdaptThreads on 2 cores for a 1.9 GFLOP/step model, started on an idle machine (2 threads),
    with a fake clock and a fake busy reader (``busy[0]`` is what the next read sees)."""
    from napari_pix2pix.training.adapt import AdaptThreads

    clock, trainer = _Clock(), _Trainer()
    trainer.threads = threads.choose_threads(work=1.9, cores=2, busy=0)
    adapt = AdaptThreads(trainer.threads, work=1.9, every=10.0, clock=clock, read_busy=lambda: busy[0],
                         read_cores=lambda: 2, set_threads=set_to.append)

    def step(seconds=10.0):
        clock.now += seconds
        return adapt.on_step(trainer, 0)

    adapt.on_step(trainer, 0)  # the first step starts the clock
    return step, trainer


def test_auto_threads_follow_a_competitor_that_starts_and_ends():
    busy, set_to = [0], []
    step, trainer = _adapt(busy, set_to)
    assert step() == [] and step(3.0) == [] and set_to == []  # idle; not due again within 10 s
    busy[0] = 1  # another process starts
    assert step() == [] and set_to == []  # seen once: wait
    (event,) = step()
    assert set_to == [1] and trainer.threads.intra == 1 and (event.before, event.after) == (2, 1)
    assert event.line == "threads 2 -> 1 (auto: model 1.9 GFLOP/step, 2 cores, 1 busy)"
    assert step() == [] and set_to == [1]  # stable under the load
    busy[0] = 0  # it ends
    assert step() == [] and set_to == [1]
    (event,) = step()
    assert set_to == [1, 2] and trainer.threads.intra == 2 and event.line.startswith("threads 1 -> 2 (auto: ")


def test_auto_threads_do_not_flap_on_a_one_check_blip():
    busy, set_to = [0], []
    step, trainer = _adapt(busy, set_to)
    for load in (1, 0, 1, 0, 0, 1, 0):  # never the same new count on two checks in a row
        busy[0] = load
        assert step() == []
    assert set_to == [] and trainer.threads.intra == 2


def test_an_explicit_thread_count_is_never_changed_mid_run(one_torch_thread, monkeypatch):
    import numpy as np
    import torch

    from _helpers import tiny_model, tiny_train
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import ThreadsEvent, Trainer
    from napari_pix2pix.training import adapt as callbacks

    reads = []
    monkeypatch.setattr(callbacks, "RECHECK_SECONDS", 0.0)  # re-check at every step
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: reads.append(1) or 1)
    a = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    trainer = Trainer(tiny_model(), tiny_train(steps=4, threads=2), from_arrays(a, 1 - a))
    for event in trainer.events():
        assert torch.get_num_threads() == 2 and not isinstance(event, ThreadsEvent)
    assert reads == []  # the load is never read for an explicit count
    # the same run with auto (a model large enough to split), started idle: the load appears
    loads = iter([0] + [1] * 10)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: next(loads))
    trainer = Trainer(tiny_model(), tiny_train(steps=4, threads="auto"), from_arrays(a, 1 - a))
    trainer.work = 50.0
    changes = [e for e in trainer.events() if isinstance(e, ThreadsEvent)]
    assert [(e.before, e.after) for e in changes] == [(2, 1)] and trainer.threads.intra == 1
    assert torch.get_num_threads() == 1  # restored after the run
