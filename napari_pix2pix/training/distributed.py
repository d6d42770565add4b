"""Under ``torchrun`` (WORLD_SIZE > 1): process group, DDP wrapping, rank agreement, buffer sync.

Each rank samples its own patches; parameters are all-reduced by DDP, batch-norm running
statistics are averaged here before rank 0 previews, validates or saves.
"""

from __future__ import annotations

import os

import torch


def dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple[torch.device, bool]:
    """Start the process group unless one exists; returns (this rank's device, whether we own the group)."""
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device, owns


def convert_sync_batchnorm(state) -> None:
    if state.device.type == "cuda":
        state.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(state.generator)
        state.discriminator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(state.discriminator)
    else:  # torch's SyncBatchNorm runs on CUDA only; per-rank BN, buffers averaged (sync_buffers)
        import warnings

        warnings.warn("sync_batchnorm needs CUDA; on the CPU each rank normalises its own batch "
                      "and the running statistics are averaged across ranks.", stacklevel=3)


def wrap(module: torch.nn.Module, device: torch.device):
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, broadcast_buffers=False)


def all_ok(ok: torch.Tensor, world_size: int) -> bool:
    """``bool(ok)``, agreed by all ranks (any rank's failure stops or skips them all)."""
    if world_size > 1:
        import torch.distributed as dist

        flag = ok.detach().reshape(()).to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        ok = flag
    return bool(ok)


def agree_flags(flags: torch.Tensor, world_size: int) -> torch.Tensor:
    """The deferred guard's ``[halted, first bad step, which]`` agreed by all ranks: halted if any
    rank halted, at the earliest bad step (a rank's bad gradients reach every rank through DDP)."""
    if world_size <= 1:
        return flags
    import torch.distributed as dist

    halted = flags[:1].clone()
    dist.all_reduce(halted, op=dist.ReduceOp.MAX)
    first = torch.where(flags[:1] > 0, flags[1:2], torch.full_like(flags[1:2], float(2**40)))
    dist.all_reduce(first, op=dist.ReduceOp.MIN)
    which = flags[2:].clone()
    dist.all_reduce(which, op=dist.ReduceOp.MAX)
    return torch.cat([halted, first, which])


def sync_buffers(modules, world_size: int) -> None:
    """Average floating-point buffers over the ranks (DDP all-reduces gradients only)."""
    import torch.distributed as dist

    if world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for net in modules:
            for buf in net.buffers():
                if buf.is_floating_point():
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(world_size)


def finish(owns: bool, barrier: bool = True) -> None:
    """Wait for rank 0's final save, then end the process group if this trainer started it."""
    import torch.distributed as dist

    if owns and dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()
