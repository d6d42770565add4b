"""Building a run: checks, device, distributed set-up, the state, data sampling, the step and
the CPU thread policy of the stream."""

from __future__ import annotations

import os

import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..devices import resolve_device
from ..errors import ConfigError, DatasetError
from ..models import geometry
from . import distributed as dist
from .state import TrainState
from .step import Step


def check_data(model, dataset) -> None:
    if dataset is None or len(dataset) == 0:
        raise DatasetError("the training dataset is empty.", "pair some images first (see `pair`).")
    if dataset.in_channels != model.in_channels or dataset.out_channels != model.out_channels:
        raise DatasetError(
            f"the data has {dataset.in_channels} -> {dataset.out_channels} channels but the model "
            f"expects {model.in_channels} -> {model.out_channels}.",
            "set the model's in/out channels to match the data, or choose other layers/channels.")


class Batches:
    """The next training batch on the device: sampled patches, augmented, in the chosen layout."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trainer
        a, b = t.sampler.sample(t.state.sampler_rng)
        pin = t.device.type == "cuda"
        if pin:
            a, b = a.pin_memory(), b.pin_memory()
        a, b = t.augment(a.to(t.device, non_blocking=pin), b.to(t.device, non_blocking=pin))
        if t.config.channels_last:
            a, b = (x.contiguous(memory_format=torch.channels_last) for x in (a, b))
        return a, b


def deferred_guard(device: torch.device, config) -> bool:
    """Whether the step skips per-step host reads (see step.py): CUDA, ``nan_policy='stop'``, no EMA."""
    return device.type == "cuda" and config.nan_policy == "stop" and not getattr(config, "ema", False)


def build(trainer, model, resume, init_from) -> None:
    """Fill ``trainer`` with everything a run needs (state, networks as trained, sampler, step)."""
    config, dataset, val_dataset = trainer.config, trainer.dataset, trainer.val_dataset
    trainer.rank, trainer.world_size = dist.dist_env()
    ckpt = None
    for source in (resume, init_from):
        if source is not None:
            ckpt = source if isinstance(source, Checkpoint) else load_checkpoint(source)
            model = ckpt.model
            break
    trainer.model_config = model
    check_data(model, dataset)
    if config.crop % model.size_multiple:
        m = model.size_multiple
        raise ConfigError(f"crop {config.crop} is not a multiple of {m}, which {model.generator} needs.",
                          f"use a crop that is a multiple of {m}, or a smaller generator "
                          "(unet_128, unet_64, resnet_*).")
    device = resolve_device(config.device)
    trainer._owns_group = False
    if trainer.world_size > 1:
        device, trainer._owns_group = dist.init(device)
    trainer.device = device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick the fastest kernels
    deferred = deferred_guard(device, config)
    state = trainer.state = TrainState(model, config, device, use_scaler=deferred)
    if config.sync_batchnorm and trainer.world_size > 1:
        dist.convert_sync_batchnorm(state)
    trainer.geometry = geometry(state.discriminator)
    if 0 in trainer.geometry.map_size(config.crop):
        raise ConfigError(f"crop {config.crop} is too small for this discriminator (receptive field "
                          f"{trainer.geometry.rf}): its map would be empty.",
                          "use a larger crop (e.g. 128 for discriminator_layers 5) or fewer discriminator layers.")
    if ckpt is not None:
        source = resume if isinstance(resume, (str, os.PathLike)) else "model"
        if resume is not None:
            state.restore(ckpt, source)
        else:
            state.load_weights(ckpt, init_from if isinstance(init_from, (str, os.PathLike)) else "model")
    g_train, d_train = state.generator, state.discriminator
    if trainer.world_size > 1:
        g_train, d_train = dist.wrap(g_train, device), dist.wrap(d_train, device)
    if config.compile:
        g_train, d_train = torch.compile(g_train), torch.compile(d_train)
    trainer.g_train, trainer.d_train = g_train, d_train
    trainer.stepper = Step(state, g_train, d_train, deferred=deferred,
                           all_ok=lambda ok: dist.all_ok(ok, trainer.world_size),
                           agree=lambda flags: dist.agree_flags(flags, trainer.world_size))

    from ..data.augment import PairAugment
    from ..data.sampling import PatchSampler, validation_patches

    trainer._batch = Batches(trainer)
    trainer.sampler = PatchSampler(dataset, config.crop, config.batch_size,
                                   foreground_bias=getattr(dataset, "foreground_bias", 0.0),
                                   rank=trainer.rank, world_size=trainer.world_size)
    trainer.augment = PairAugment(config.augment, a_is_labels=getattr(dataset, "a_is_labels", False),
                                  b_is_labels=getattr(dataset, "b_is_labels", False)).to(device)
    has_val = val_dataset is not None and len(val_dataset)
    trainer.preview_a, trainer.preview_b = validation_patches(val_dataset if has_val else dataset, config.crop,
                                                              max_patches=1)
    trainer.val_a = trainer.val_b = None
    if has_val:
        trainer.val_a, trainer.val_b = validation_patches(val_dataset, config.crop, max_patches=8)
    trainer.work = None  # GFLOP per step, for the thread policy (CPU, auto)
    if device.type == "cpu" and trainer.world_size == 1 and getattr(config, "threads", "auto") == "auto":
        from ..threads import work_per_step

        trainer.work = work_per_step(model, config.crop, config.batch_size, state.generator, state.discriminator)


def thread_policy(trainer):
    """``(threads, restore)``: the CPU thread choice for the stream (None on a GPU and under torchrun,
    whose launcher sets threads) and the function that puts the previous setting back."""
    from ..threads import apply_threads, choose_threads

    if trainer.device.type != "cpu" or trainer.world_size != 1:
        return None, (lambda: None)
    threads = choose_threads(getattr(trainer.config, "threads", "auto"), work=trainer.work, gui=trainer.gui)
    return threads, apply_threads(threads)
