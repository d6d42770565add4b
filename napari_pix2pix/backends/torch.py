"""The torch backend: a :class:`~napari_pix2pix.model.Pix2PixModel` on its device.

Test-time mode (``TileConfig.mode``): ``eval`` (running batch-norm statistics, no dropout,
deterministic) or ``train`` (the paper's: dropout on and batch statistics; running statistics
are not modified). ``precision``: ``fp32``, or autocast to ``bf16``/``fp16``.
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
