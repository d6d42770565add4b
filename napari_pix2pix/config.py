"""The configuration dataclasses that every face (CLI, napari, graph nodes) shares.

Faces never keep parallel option lists: a widget or a node builds its choices from the
``*_CHOICES`` tuples and the field defaults here, and passes a dataclass to the engine.
Every dataclass validates itself in ``__post_init__`` and round-trips through
``to_dict`` / ``from_dict`` (JSON-safe), which is how it is embedded in model files.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

GENERATOR_CHOICES = ("unet_256", "unet_128", "unet_64", "unet_32", "resnet_9blocks", "resnet_6blocks")
DISCRIMINATOR_CHOICES = ("patch", "pixel", "image")
NORM_CHOICES = ("batch", "instance", "none")
GAN_MODE_CHOICES = ("vanilla", "lsgan", "hinge")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("fp32", "bf16", "fp16")
TEST_MODE_CHOICES = ("eval", "train")
NAN_POLICY_CHOICES = ("stop", "skip")
NORM_MODE_CHOICES = ("percentile", "fixed", "none", "labels")
LABEL_ENCODING_CHOICES = ("binary", "onehot", "scaled")
DIRECTION_CHOICES = ("AtoB", "BtoA")
# validation metric -> +1 when higher is better, -1 when lower is better
BEST_METRIC_DIRECTIONS = {"PSNR": 1, "SSIM": 1, "L1": -1, "Dice": 1, "IoU": 1}

T = TypeVar("T")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(str, choices))}.",
                          f"choose {name} from: {', '.join(map(str, choices))}.")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value is None or (value < 0 if allow_zero else value <= 0):
        raise ConfigError(f"{name}={value!r} must be {'>= 0' if allow_zero else '> 0'}.",
                          f"pass a {'non-negative' if allow_zero else 'positive'} {name}.")


class _Serialisable:
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[T], data: dict | None) -> T:
        """Build from a dict, ignoring unknown keys (files written by newer versions)."""
        data = dict(data or {})
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            sub = _SUBCONFIGS.get((cls.__name__, f.name))
            if sub is not None and isinstance(value, dict):
                value = sub.from_dict(value)
            elif isinstance(value, list) and f.name in ("channels_a", "channels_b"):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def replace(self: T, **changes) -> T:
        return dataclasses.replace(self, **changes)


def unet_depth(generator: str) -> int | None:
    """Number of down levels of a ``unet_N`` generator (N = 2**depth); None for other kinds."""
    m = re.fullmatch(r"unet_(\d+)", generator)
    if not m:
        return None
    n = int(m.group(1))
    depth = n.bit_length() - 1
    if n < 8 or 2**depth != n:
        raise ConfigError(f"generator {generator!r}: N in unet_N must be a power of two >= 8.",
                          "use unet_256, unet_128, unet_64 or unet_32.")
    return depth


@dataclass
class ModelConfig(_Serialisable):
    """Architecture of the generator and discriminator (everything needed to rebuild them).

    ``generator``: ``unet_N`` (N = 2**depth, e.g. unet_256 = 8 levels) or ``resnet_{6,9}blocks``.
    ``unet_skips=False`` gives the encoder-decoder without skips (the paper's ablation).
    ``discriminator``: ``patch`` (n_layers 1..5), ``pixel`` (1x1) or ``image`` (whole input).
    """

    generator: str = "unet_256"
    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    ndf: int = 64
    norm: str = "batch"
    dropout: bool = True
    unet_skips: bool = True
    discriminator: str = "patch"
    discriminator_layers: int = 3

    def __post_init__(self):
        if unet_depth(self.generator) is None and self.generator not in GENERATOR_CHOICES:
            _check_choice("generator", self.generator, GENERATOR_CHOICES)
        _check_choice("norm", self.norm, NORM_CHOICES)
        _check_choice("discriminator", self.discriminator, DISCRIMINATOR_CHOICES)
        for name in ("in_channels", "out_channels", "ngf", "ndf"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer.", f"pass {name} >= 1.")
        if self.discriminator == "patch" and not 1 <= int(self.discriminator_layers) <= 5:
            raise ConfigError(f"discriminator_layers={self.discriminator_layers} is outside 1..5.",
                              "use 1 (16x16), 2 (34), 3 (70, the paper's), 4 (142) or 5 (286).")

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this for the generator (inference pads to it)."""
        depth = unet_depth(self.generator)
        return 2**depth if depth is not None else 4


@dataclass
class AugmentConfig(_Serialisable):
    """Joint augmentation of (A, B) patches, applied on the training device in batches.

    The paper's jitter: resize by ``jitter_scale`` (286/256) then random-crop back, plus mirror.
    ``affine`` and ``intensity`` are optional extras; intensity changes touch A only.
    """

    jitter: bool = True
    jitter_scale: float = 286 / 256
    flip: bool = True
    rot90: bool = False
    affine: bool = False
    intensity: bool = False

    def __post_init__(self):
        if self.jitter_scale < 1:
            raise ConfigError(f"jitter_scale={self.jitter_scale} is below 1.", "use 1.0 (off) or more, e.g. 286/256.")


@dataclass
class NormConfig(_Serialisable):
    """How one side (A or B) maps to the model's [-1, 1].

    ``percentile``: low/high are percentiles (1, 99.8 by default), per image or over the dataset.
    ``fixed``: low/high are data values. ``none``: float data already in [-1, 1] or [0, 1].
    ``labels``: integer label images, encoded by ``label_encoding``.
    """

    mode: str = "percentile"
    per_image: bool = False
    low: float = 1.0
    high: float = 99.8
    label_encoding: str = "binary"

    def __post_init__(self):
        _check_choice("normalization mode", self.mode, NORM_MODE_CHOICES)
        _check_choice("label_encoding", self.label_encoding, LABEL_ENCODING_CHOICES)
        if self.mode in ("percentile", "fixed") and not self.low < self.high:
            raise ConfigError(f"normalization low={self.low} is not below high={self.high}.",
                              "pass low < high (e.g. percentiles 1 and 99.8).")
        if self.mode == "percentile" and not (0 <= self.low and self.high <= 100):
            raise ConfigError(f"percentiles {self.low}..{self.high} are outside 0..100.",
                              "pass percentiles between 0 and 100, e.g. 1 and 99.8.")


@dataclass
class DataConfig(_Serialisable):
    """Pairing options: normalisation per side, label handling, channels and the validation split.

    ``a_is_labels`` / ``b_is_labels``: None means detect (integer dtype with few values).
    ``channels_a`` / ``channels_b``: for one multichannel image split into A and B.
    ``validation_fraction``: fraction of pairs held out (or, with a single pair, the bottom
    strip of rows of that height fraction).
    ``foreground_bias``: probability that a patch is re-drawn until it holds foreground.
    """

    norm_a: NormConfig = field(default_factory=NormConfig)
    norm_b: NormConfig = field(default_factory=NormConfig)
    a_is_labels: bool | None = None
    b_is_labels: bool | None = None
    channels_a: tuple[int, ...] | None = None
    channels_b: tuple[int, ...] | None = None
    direction: str = "AtoB"
    validation_fraction: float = 0.1
    foreground_bias: float = 0.0

    def __post_init__(self):
        _check_choice("direction", self.direction, DIRECTION_CHOICES)
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction={self.validation_fraction} is outside [0, 1).",
                              "pass a fraction such as 0.1, or 0 for no validation split.")
        if not 0 <= self.foreground_bias <= 1:
            raise ConfigError(f"foreground_bias={self.foreground_bias} is outside [0, 1].",
                              "pass a probability such as 0.5.")


@dataclass
class TrainConfig(_Serialisable):
    """Optimisation settings. Defaults are the paper's (Adam 2e-4, betas 0.5/0.999, lambda 100, batch 1).

    ``lambda_gan`` weighs the generator's GAN term (0: L1 only, the paper's ablation; the
    discriminator still trains so that its map stays meaningful); ``lambda_l1=0``: cGAN only.

    ``steps`` is the total number of iterations; the learning rate is constant for
    ``steps - decay_steps`` and then decays linearly towards 0 over ``decay_steps``
    (None: half of ``steps``, as the paper's 100 + 100 epochs).
    """

    steps: int = 1000
    decay_steps: int | None = None
    batch_size: int = 1
    crop: int = 256
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    lambda_gan: float = 1.0
    gan_mode: str = "vanilla"
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    log_every: int = 10
    preview_every: int = 50
    validate_every: int = 0
    checkpoint_every: int = 0
    checkpoint_dir: str | None = None
    nan_policy: str = "stop"
    sync_batchnorm: bool = False
    best_metric: str = "PSNR"

    def __post_init__(self):
        _check_choice("gan_mode", self.gan_mode, GAN_MODE_CHOICES)
        _check_choice("device", self.device, DEVICE_CHOICES)
        _check_choice("precision", self.precision, PRECISION_CHOICES)
        _check_choice("nan_policy", self.nan_policy, NAN_POLICY_CHOICES)
        _check_choice("best_metric", self.best_metric, tuple(BEST_METRIC_DIRECTIONS))
        for name in ("steps", "batch_size", "crop"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer.", f"pass {name} >= 1.")
        _check_positive("lr", self.lr)
        _check_positive("lambda_l1", self.lambda_l1, allow_zero=True)
        _check_positive("lambda_gan", self.lambda_gan, allow_zero=True)
        if self.lambda_l1 == 0 and self.lambda_gan == 0:
            raise ConfigError("lambda_l1 and lambda_gan are both 0, so the generator has nothing to learn.",
                              "keep lambda_l1 100 (the paper's) and/or lambda_gan 1.")
        if self.decay_steps is not None and not 0 <= self.decay_steps <= self.steps:
            raise ConfigError(f"decay_steps={self.decay_steps} is outside 0..steps ({self.steps}).",
                              "pass decay_steps between 0 and steps.")
        for name in ("log_every", "preview_every", "validate_every", "checkpoint_every"):
            _check_positive(name, getattr(self, name), allow_zero=True)

    @property
    def constant_steps(self) -> int:
        decay = self.steps // 2 if self.decay_steps is None else self.decay_steps
        return self.steps - decay

    def lr_at(self, step: int) -> float:
        """Learning rate for 0-based ``step``: constant, then linear decay (never below 0)."""
        decay = self.steps - self.constant_steps
        if step < self.constant_steps or decay == 0:
            return self.lr
        return self.lr * max(0.0, 1.0 - (step - self.constant_steps + 1) / (decay + 1))


@dataclass
class TileConfig(_Serialisable):
    """Inference settings.

    ``tile``: tile side in pixels (0: whole image at once). ``overlap``: pixels shared by
    neighbouring tiles, blended with a smooth ramp. ``mode``: ``eval`` (running batch-norm
    statistics, no dropout: deterministic, the default) or ``train`` (the paper's test-time
    behaviour: dropout on and batch statistics).
    """

    tile: int = 512
    overlap: int = 64
    mode: str = "eval"
    batch_size: int = 4
    device: str = "auto"
    precision: str = "fp32"
    seed: int | None = None

    def __post_init__(self):
        _check_choice("mode", self.mode, TEST_MODE_CHOICES)
        _check_choice("device", self.device, DEVICE_CHOICES)
        _check_choice("precision", self.precision, PRECISION_CHOICES)
        _check_positive("tile", self.tile, allow_zero=True)
        _check_positive("overlap", self.overlap, allow_zero=True)
        _check_positive("batch_size", self.batch_size)
        if self.tile and self.overlap * 2 >= self.tile:
            raise ConfigError(f"overlap={self.overlap} is too large for tile={self.tile}.",
                              "use an overlap below half the tile size, e.g. tile 512 with overlap 64.")


_SUBCONFIGS = {
    ("DataConfig", "norm_a"): NormConfig,
    ("DataConfig", "norm_b"): NormConfig,
    ("TrainConfig", "augment"): AugmentConfig,
}
