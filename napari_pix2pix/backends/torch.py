"""The torch backend: a :class:`~napari_pix2pix.model.Pix2PixModel` on its device.

Test-time mode (``TileConfig.mode``): ``eval`` (running batch-norm statistics, no dropout,
deterministic) or ``train`` (the paper's: dropout on and batch statistics; running statistics
are not modified). ``precision``: ``fp32``, or autocast to ``bf16``/``fp16``.

Stochastic samples (:meth:`TorchBackend.sampling_session`): eval mode (running batch-norm
statistics) with the dropout layers drawing one mask per tile from that tile's own seeded
``torch.Generator`` (:class:`SeededDropout`); the realism map comes from the discriminator.
"""

from __future__ import annotations

import contextlib

import numpy as np


def autocast(device, precision: str):
    """The autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type,
                          dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def generator_runner(generator, device, precision: str = "fp32"):
    """``run(batch)`` for :func:`~napari_pix2pix.predict.run_tiles`: numpy float32 in, numpy
    float32 out, the generator run on ``device`` under ``precision``'s autocast. The caller
    chooses the mode (see :func:`napari_pix2pix.inference.test_time_mode`)."""
    import torch

    device = torch.device(device)

    def run(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
        with autocast(device, precision):
            y = generator(x)
        return y.float().cpu().numpy()

    return run


def dropout_layers(generator) -> list:
    from torch import nn

    return [m for m in generator.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


class SeededDropout:
    """Makes a generator's dropout layers draw one mask per batch item from that item's own
    ``torch.Generator`` (set with :meth:`seed_items`). Use as a context manager around the passes;
    the generator must be in eval mode (dropout layers then return their input and the hook
    applies the mask, scaled by ``1 / (1 - p)`` as in training)."""

    def __init__(self, generator):
        self.generator = generator
        self.layers = dropout_layers(generator)
        self._items: list = []
        self._handles: list = []

    def __enter__(self):
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []

    def seed_items(self, seeds) -> None:
        import torch

        self._items = [torch.Generator().manual_seed(int(s)) for s in seeds]

    def _hook(self, module, inputs, output):
        import torch

        x = inputs[0]
        if len(self._items) != x.shape[0]:
            raise RuntimeError("SeededDropout: seed_items() was not called for this batch")
        keep = torch.stack([(torch.rand(x.shape[1:], generator=g) >= module.p) for g in self._items])
        return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - module.p)


@contextlib.contextmanager
def stochastic_mode(generator):
    """Eval mode (running batch-norm statistics) with :class:`SeededDropout` masks; restored after."""
    import torch

    was_training = generator.training
    generator.eval()
    try:
        with SeededDropout(generator) as dropout, torch.no_grad():
            yield dropout
    finally:
        generator.train(was_training)


class TorchBackend:
    """Runs a loaded :class:`~napari_pix2pix.model.Pix2PixModel`."""

    name = "torch"

    def __init__(self, model):
        self.model = model

    @property
    def in_channels(self) -> int:
        return self.model.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.model.config.out_channels

    @property
    def size_multiple(self) -> int:
        return self.model.config.size_multiple

    @property
    def device(self):
        return self.model.device

    torch_device = device  # where the task adapters run kornia

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def data(self) -> dict:
        return self.model.checkpoint.data or {}

    def normalizations(self, dtype):
        return self.model.normalizations(dtype)

    def is_out_of_memory(self, exc: BaseException) -> bool:
        from ..inference import is_out_of_memory

        return is_out_of_memory(exc)

    @contextlib.contextmanager
    def session(self, mode: str = "eval", seed: int | None = None, precision: str = "fp32"):
        from ..inference import test_time_mode

        generator = self.model.generator
        with test_time_mode(generator, mode, seed):
            yield generator_runner(generator, self.model.device, precision)

    @contextlib.contextmanager
    def sampling_session(self, precision: str = "fp32"):
        """Yields ``(run, seed_items)`` for stochastic passes: ``seed_items(seeds)`` (one seed a
        tile) before each batch fixes that batch's dropout masks."""
        from ..errors import InputError

        generator = self.model.generator
        if not dropout_layers(generator):
            raise InputError("this model has no dropout layers, so every sample would be identical.",
                             "use samples 1, or a model with dropout (a U-Net of at least 6 levels, "
                             "e.g. unet_64 or unet_256, trained with dropout on).")
        with stochastic_mode(generator) as dropout:
            yield generator_runner(generator, self.model.device, precision), dropout.seed_items

    def realism(self, x: np.ndarray, y: np.ndarray, stack: tuple = ()) -> np.ndarray:
        """The discriminator's probability-real map ``[..stack, H, W]`` on (``x``, ``y``)."""
        from ..uncertainty import realism_map

        return realism_map(self.model, x, y, stack)
