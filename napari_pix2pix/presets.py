"""Named presets (sets of option overrides) and a duration estimate before training.

A preset is a :class:`Preset`: a help line and ``overrides``, a mapping of schema names
(fields of :class:`~napari_pix2pix.config.ModelConfig`, :class:`~napari_pix2pix.config.TrainConfig`
and its :class:`~napari_pix2pix.config.AugmentConfig`) to values. Every face offers
:data:`PRESETS` by name, picks :func:`default_preset` for the device, applies one with
:func:`apply_preset` (options the user set win over it) and shows :func:`estimate_duration`
before it starts training.

>>> from napari_pix2pix.config import ModelConfig
>>> apply_preset("quick-cpu", ModelConfig()).generator
'unet_128'
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from .config import AugmentConfig, TrainConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    help: str
    overrides: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "quick-cpu": Preset(
        "a small U-Net (unet_128, 16 filters, bilinear decoder) on 128 px patches, batch 2, L1 loss only "
        "(the discriminator still trains, for the realism map), the best validated checkpoint kept as the "
        "model: a first model in minutes on a CPU",
        {"generator": "unet_128", "ngf": 16, "ndf": 16, "upsample": "bilinear", "crop": 128, "batch_size": 2,
         "lambda_gan": 0.0, "select_best": True, "steps": 600}),
    "paper": Preset(
        "the paper's recipe: unet_256, 64 filters, 70 px PatchGAN, 256 px patches, batch 1, Adam 2e-4 "
        "(0.5, 0.999), lambda 100, jitter 286/256 and mirroring, linear decay over the second half, "
        "transposed-convolution decoder",
        {"generator": "unet_256", "ngf": 64, "ndf": 64, "norm": "batch", "dropout": True, "unet_skips": True,
         "upsample": "transposed",
         "discriminator": "patch", "discriminator_layers": 3, "crop": 256, "batch_size": 1, "lr": 2e-4,
         "beta1": 0.5, "beta2": 0.999, "lambda_l1": 100.0, "lambda_gan": 1.0, "gan_mode": "vanilla",
         "decay_steps": None, "select_best": False, "ema": False, "jitter": True, "jitter_scale": 286 / 256, "flip": True, "rot90": False}),
}


def preset_names() -> tuple[str, ...]:
    return tuple(PRESETS)


def default_preset(device: str = "auto") -> str:
    """``quick-cpu`` where training runs on a CPU (or Apple mps), ``paper`` on CUDA. ``device``:
    a device choice (``auto`` resolves to what this machine has)."""
    name = str(device or "auto")
    if name == "auto":
        from .devices import available_devices

        name = "cuda" if available_devices()["cuda"] else "cpu"
    return "paper" if name.split(":")[0] == "cuda" else "quick-cpu"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset {name!r} is unknown.", f"choose one of: {', '.join(PRESETS)}.",
                          setting="preset") from None


def apply_preset(name: str, config):
    """``config`` (any configuration dataclass) with the preset's overrides for its own fields
    (a :class:`TrainConfig`'s augmentation included). Unknown names raise :class:`ConfigError`."""
    overrides = get_preset(name).overrides
    names = {f.name for f in dataclasses.fields(config)}
    changes = {k: v for k, v in overrides.items() if k in names}
    if isinstance(config, TrainConfig):
        aug = {k: v for k, v in overrides.items() if k in {f.name for f in dataclasses.fields(AugmentConfig)}}
        if aug:
            changes["augment"] = config.augment.replace(**aug)
    return dataclasses.replace(config, **changes)


# ------------------------------------------------------------------------------- estimate
def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Estimate:
    """``seconds_per_step`` measured on ``device``; ``seconds`` for ``steps``; ``text`` for people."""

    seconds_per_step: float
    steps: int
    seconds: float
    device: str

    @property
    def text(self) -> str:
        return (f"about {format_duration(self.seconds)} for {self.steps} steps "
                f"({self.seconds_per_step:.3g} s/step on {self.device})")


def _synthetic_dataset(model_config, crop: int):
    import numpy as np

    from .data import sources

    rng = np.random.default_rng(0)
    side = crop + crop // 4

    def image(channels):
        shape = (side, side) if channels == 1 else (side, side, channels)
        return rng.random(shape, dtype=np.float32)

    return sources.from_arrays(image(model_config.in_channels), image(model_config.out_channels),
                               rgb_a=model_config.in_channels > 1, rgb_b=model_config.out_channels > 1,
                               names="timing")


def estimate_duration(model_config, train_config, device: str | None = None, steps: int | None = None, *,
                      dataset=None, timing_steps: int = 2, gui: bool = False) -> Estimate:
    """Time ``timing_steps`` real training steps (after one warm-up step) of these settings and
    extrapolate to ``steps`` (default ``train_config.steps``). ``dataset``: the training data
    (default: random data of the model's channels). Saves nothing, and leaves the global torch,
    numpy and random states as they were. ``gui``: a GUI thread shares this process (the
    timing uses the same thread policy as a training started from a GUI)."""
    import random

    import numpy as np
    import torch

    from .training import StepEvent, Trainer

    steps = int(train_config.steps if steps is None else steps)
    device = device or train_config.device
    timing_steps = max(1, int(timing_steps))
    config = train_config.replace(steps=timing_steps + 1, decay_steps=None, device=device, validate_every=0,
                                  preview_every=0, checkpoint_every=0, checkpoint_dir=None, log_every=0,
                                  compile=False)
    if dataset is None:
        dataset = _synthetic_dataset(model_config, config.crop)
    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    try:
        trainer = Trainer(model_config, config, dataset, gui=gui)
        times = []
        last = None
        for event in trainer.events():
            if isinstance(event, StepEvent):
                now = time.perf_counter()
                if last is not None:
                    times.append(now - last)
                last = now
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])
    per_step = float(np.median(times)) if times else 0.0
    return Estimate(per_step, steps, per_step * steps, str(trainer.device))
