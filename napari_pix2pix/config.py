"""The configuration dataclasses that every face (CLI, napari, graph nodes) shares: THE ONE SCHEMA.

Every user-facing setting is a field declared with :func:`~napari_pix2pix.schema.option`, which
carries its help text, choices (or pattern) or range, level (basic/advanced) and the faces that
show it. Faces never keep parallel option lists: they read :func:`~napari_pix2pix.schema.options_of`
(defaults, choices, ranges, help) and pass a dataclass to the engine. Every dataclass validates
itself in ``__post_init__`` (first :func:`~napari_pix2pix.schema.check` against the schema, then
the rules that tie fields together) and round-trips through ``to_dict`` / ``from_dict``
(JSON-safe), which is how it is embedded in model files.

The ``*_CHOICES`` tuples below are the choice lists the schema is built from; faces should read
``options_of(...)`` rather than import them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import ConfigError
from .schema import check, option

GENERATOR_CHOICES = ("unet_256", "unet_128", "unet_64", "unet_32", "resnet_9blocks", "resnet_6blocks")
GENERATOR_PATTERN = r"unet_\d+"
DISCRIMINATOR_CHOICES = ("patch", "pixel", "image")
NORM_CHOICES = ("batch", "instance", "none")
GAN_MODE_CHOICES = ("vanilla", "lsgan", "hinge")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DEVICE_PATTERN = r"cuda:\d+"
PRECISION_CHOICES = ("fp32", "bf16", "fp16")
TEST_MODE_CHOICES = ("eval", "train")
NAN_POLICY_CHOICES = ("stop", "skip")
NORM_MODE_CHOICES = ("percentile", "fixed", "none", "labels")
LABEL_ENCODING_CHOICES = ("binary", "onehot", "scaled")
DIRECTION_CHOICES = ("AtoB", "BtoA")
TASK_CHOICES = ("translate", "colorize")  # see napari_pix2pix.tasks
OUTPUT_DTYPE_CHOICES = ("target", "input", "uint8", "uint16", "int32", "float32")
OUTPUT_DTYPE_PATTERN = r"u?int(8|16|32|64)|float(16|32|64)"
BACKEND_CHOICES = ("auto", "torch", "onnxruntime")
EXPORT_FORMATS = ("onnx", "bioimageio")
UPSAMPLE_CHOICES = ("transposed", "bilinear", "nearest")
# what a model file without an ``upsample`` key was built with (files written before the option)
LEGACY_UPSAMPLE = "transposed"
# validation metric -> +1 when higher is better, -1 when lower is better
BEST_METRIC_DIRECTIONS = {"PSNR": 1, "SSIM": 1, "L1": -1, "Dice": 1, "IoU": 1}

MAX_SEED = 2**63 - 1

T = TypeVar("T")


def _check_int(obj, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"`{name}`={v!r} is not a whole number.", f"pass `{name}` as an integer.",
                              setting=name)


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
        raise ConfigError(f"`generator` {generator!r}: N in unet_N must be a power of two >= 8.",
                          "use unet_256, unet_128, unet_64 or unet_32.", setting="generator")
    return depth


@dataclass
class ModelConfig(_Serialisable):
    """Architecture of the generator and discriminator (everything needed to rebuild them).

    ``generator``: ``unet_N`` (N = 2**depth, e.g. unet_256 = 8 levels) or ``resnet_{6,9}blocks``.
    ``unet_skips=False`` gives the encoder-decoder without skips (the paper's ablation).
    ``discriminator``: ``patch`` (n_layers 1..5), ``pixel`` (1x1) or ``image`` (whole input).
    """

    generator: str = option(
        "unet_256", choices=GENERATOR_CHOICES, pattern=GENERATOR_PATTERN, pattern_hint="unet_N",
        help="generator network: U-Net (unet_N, N = 2**levels; unet_256 is the paper's) or ResNet")
    in_channels: int = option(3, range=(1, 4096), faces=(), level="advanced",
                              help="input channels (set from the data)")
    out_channels: int = option(3, range=(1, 4096), faces=(), level="advanced",
                               help="output channels (set from the data)")
    ngf: int = option(64, range=(1, 1024), label="G filters (ngf)",
                      help="generator filters in the first layer (the paper's: 64)")
    ndf: int = option(64, range=(1, 1024), label="D filters (ndf)",
                      help="discriminator filters in the first layer (the paper's: 64)")
    norm: str = option("batch", choices=NORM_CHOICES, level="advanced",
                       help="normalisation layers of both networks")
    dropout: bool = option(True, level="advanced",
                           help="dropout in the generator's decoder (the paper's noise)")
    unet_skips: bool = option(True, level="advanced", faces=("cli",),
                              help="U-Net skip connections (off: the paper's encoder-decoder ablation)")
    discriminator: str = option("patch", choices=DISCRIMINATOR_CHOICES,
                                help="discriminator: patch (PatchGAN), pixel (1x1) or image (whole input)")
    discriminator_layers: int = option(3, range=(1, 5), label="D layers",
                                       help="PatchGAN layers: 1=16, 2=34, 3=70 (the paper's), 4=142, 5=286 px "
                                            "receptive field")
    upsample: str = option(
        "bilinear", choices=UPSAMPLE_CHOICES, level="advanced",
        help="how the generator's decoder doubles the image size: transposed (the paper's transposed "
             "convolutions; reference checkpoints) or resize-convolution, bilinear or nearest "
             "interpolation then a 3x3 convolution, which paints no checkerboard lattice")

    @classmethod
    def from_dict(cls, data: dict | None) -> "ModelConfig":
        """As :meth:`_Serialisable.from_dict`; a dict without ``upsample`` (a model file written
        before the option existed) means the transposed convolutions it was built with."""
        data = dict(data or {})
        data.setdefault("upsample", LEGACY_UPSAMPLE)
        return super().from_dict(data)

    def __post_init__(self):
        check(self)
        _check_int(self, "in_channels", "out_channels", "ngf", "ndf", "discriminator_layers")
        unet_depth(self.generator)
        from .limits import check_architecture

        check_architecture(self)  # U-Net depth (and ngf/ndf, channels) within sane bounds

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

    jitter: bool = option(True, help="random resize and crop back (the paper's jitter)")
    jitter_scale: float = option(286 / 256, range=(1.0, 2.0), level="advanced",
                                 help="resize factor of the jitter (the paper's: 286/256)")
    flip: bool = option(True, help="random mirroring")
    rot90: bool = option(False, help="random 90-degree rotations (for data without a preferred orientation)")
    affine: bool = option(False, level="advanced", help="random small rotations, scalings and shears")
    intensity: bool = option(False, level="advanced", help="random brightness/contrast changes of A")

    def __post_init__(self):
        check(self)


@dataclass
class NormConfig(_Serialisable):
    """How one side (A or B) maps to the model's [-1, 1].

    ``percentile``: low/high are percentiles (1, 99.8 by default), per image or over the dataset.
    ``fixed``: low/high are data values. ``none``: float data already in [-1, 1] or [0, 1].
    ``labels``: integer label images, encoded by ``label_encoding``.

    The faces show one of these per side (``norm_a``/``norm_b``), so its options carry the side
    in the face's words (CLI: ``--norm-a MODE``, ``--percentiles LOW HIGH``, ``--range-a LOW HIGH``).
    """

    mode: str = option("percentile", choices=NORM_MODE_CHOICES,
                       help="percentile (robust, the default), fixed (a data range), none "
                            "(float data already in [-1, 1] or [0, 1]) or labels (integer label images)")
    per_image: bool = option(False, level="advanced", help="percentiles per image instead of over the dataset")
    low: float = option(1.0, level="advanced",
                        help="low percentile (mode percentile) or low data value (mode fixed)")
    high: float = option(99.8, level="advanced",
                         help="high percentile (mode percentile) or high data value (mode fixed)")
    label_encoding: str = option("binary", choices=LABEL_ENCODING_CHOICES, level="advanced",
                                 help="how label images are fed to the model: binary (foreground), onehot "
                                      "(one channel per label) or scaled (label values scaled to [-1, 1])")

    def __post_init__(self):
        check(self)
        if self.mode in ("percentile", "fixed") and not self.low < self.high:
            raise ConfigError(f"normalisation low={self.low} is not below high={self.high}.",
                              "pass low < high (e.g. percentiles 1 and 99.8).", setting="low")
        if self.mode == "percentile" and not (0 <= self.low and self.high <= 100):
            raise ConfigError(f"percentiles {self.low}..{self.high} are outside 0..100.",
                              "pass percentiles between 0 and 100, e.g. 1 and 99.8.", setting="low")


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
    a_is_labels: bool | None = option(None, level="advanced", flag="--labels-a",
                                      help="treat A as a label image (default: detect)")
    b_is_labels: bool | None = option(None, level="advanced", flag="--labels-b",
                                      help="treat B as a label image (default: detect)")
    channels_a: tuple[int, ...] | None = option(None, faces=("cli",),
                                                help="channels of one multichannel source used as A")
    channels_b: tuple[int, ...] | None = option(None, faces=("cli",),
                                                help="channels of one multichannel source used as B")
    direction: str = option("AtoB", choices=DIRECTION_CHOICES,
                            help="for side-by-side AB images: AtoB (left is the source) or BtoA")
    validation_fraction: float = option(0.1, range=(0.0, 0.95), flag="--validation",
                                        help="fraction of pairs held out for validation (with one pair: the "
                                             "bottom strip of rows); 0: no validation")
    foreground_bias: float = option(0.0, range=(0.0, 1.0), level="advanced",
                                    help="probability of re-drawing a patch until it holds foreground")
    task: str = option("translate", choices=TASK_CHOICES,
                       help="what a pair means: translate (A -> B) or colorize (L -> ab from any RGB images; "
                            "no target needed, the output is RGB)")

    def __post_init__(self):
        check(self)


@dataclass
class TrainConfig(_Serialisable):
    """Optimisation settings. Defaults are the paper's (Adam 2e-4, betas 0.5/0.999, lambda 100) except
    the batch size: 2 instead of 1 (batch norm over one image, then inference on running statistics,
    cost 2-4 dB and painted a lattice in the quality benchmark; the ``paper`` preset keeps 1).

    ``lambda_gan`` weighs the generator's GAN term (0: L1 only, the paper's ablation; the
    discriminator still trains so that its map stays meaningful); ``lambda_l1=0``: cGAN only.

    ``steps`` is the total number of iterations; the learning rate is constant for
    ``steps - decay_steps`` and then decays linearly towards 0 over ``decay_steps``
    (None: half of ``steps``, as the paper's 100 + 100 epochs).
    """

    steps: int = option(1000, range=(1, 10_000_000), label="iterations", unit="steps",
                        help="training iterations in total")
    decay_steps: int | None = option(None, range=(0, 10_000_000), level="advanced", unit="steps",
                                     help="iterations of linear learning-rate decay at the end (default: half of "
                                          "the steps, the paper's)")
    batch_size: int = option(2, range=(1, 1024),
                             help="patches per step (the paper's: 1; 2 measured better on short runs, "
                                  "benchmarks/QUALITY.md)")
    crop: int = option(256, range=(8, 8192), unit="px",
                       help="training patch side in pixels (the paper's: 256)")
    lr: float = option(2e-4, range=(1e-9, 1.0), label="learning rate", help="Adam learning rate (the paper's: 2e-4)")
    beta1: float = option(0.5, range=(0.0, 0.999999), level="advanced", faces=("cli",),
                          help="Adam beta1 (the paper's: 0.5)")
    beta2: float = option(0.999, range=(0.0, 0.999999), level="advanced", faces=("cli",),
                          help="Adam beta2 (the paper's: 0.999)")
    lambda_l1: float = option(100.0, range=(0.0, 10_000.0), label="lambda (L1)",
                              help="weight of the L1 term (the paper's: 100; 0: cGAN only)")
    lambda_gan: float = option(1.0, range=(0.0, 1_000.0), level="advanced",
                               help="weight of the generator's GAN term (0: L1 only)")
    gan_mode: str = option("vanilla", choices=GAN_MODE_CHOICES, level="advanced", label="GAN loss",
                           help="adversarial loss: vanilla (the paper's), lsgan or hinge")
    seed: int = option(0, range=(0, MAX_SEED), level="advanced", help="random seed")
    device: str = option("auto", choices=DEVICE_CHOICES, pattern=DEVICE_PATTERN, pattern_hint="cuda:N",
                         help="where to train: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    precision: str = option("fp32", choices=PRECISION_CHOICES, level="advanced",
                            help="autocast precision: fp32, bf16 or fp16 (CUDA)")
    channels_last: bool = option(False, level="advanced", faces=("cli",),
                                 help="channels-last memory format (faster on some GPUs)")
    compile: bool = option(False, level="advanced", faces=("cli",),
                           help="torch.compile the networks (slow first step)")
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    log_every: int = option(10, range=(0, 1_000_000), level="advanced", faces=("cli",), unit="steps",
                            help="steps between loss reports (0: never)")
    preview_every: int = option(50, range=(0, 1_000_000), level="advanced", faces=("napari",), unit="steps",
                                help="steps between previews (0: never)")
    validate_every: int = option(100, range=(0, 1_000_000), level="advanced", unit="steps",
                                 help="steps between validations on the held-out split, and after the last "
                                      "step (0: never; needs a validation fraction)")
    checkpoint_every: int = option(0, range=(0, 10_000_000), level="advanced", label="save every", unit="steps",
                                   help="steps between checkpoints (0: at the end only)")
    checkpoint_dir: str | None = option(None, level="advanced", faces=("cli", "napari"),
                                        label="checkpoint folder",
                                        help="folder for checkpoints (default: next to the model file)")
    nan_policy: str = option("stop", choices=NAN_POLICY_CHOICES, level="advanced", faces=("cli",),
                             help="on a non-finite loss: stop (keep the last good state) or skip the step")
    sync_batchnorm: bool = option(False, level="advanced", faces=("cli",),
                                  help="synchronise batch-norm statistics across processes (distributed)")
    best_metric: str = option("PSNR", choices=tuple(BEST_METRIC_DIRECTIONS), level="advanced",
                              help="validation metric that picks the best model")
    threads: str = option("auto", choices=("auto",), pattern=r"[1-9][0-9]*", pattern_hint="N", level="advanced",
                          help="CPU threads for training: auto (chosen from the model size, the cores this "
                               "process may use, other processes' load, re-read every 10 s, and whether a GUI "
                               "needs one) or a number")
    time_limit: float = option(0.0, help="stop after this many seconds of training (0: no limit), then validate "
                               "and save", range=(0, 604_800), level="advanced", unit="s")
    ema: bool = option(False, help="keep an exponential moving average of the generator's weights; it is "
                       "validated and saved as the model", level="advanced")
    ema_decay: float = option(0.999, help="decay of the generator's moving average (per step)",
                              range=(0.0, 0.99999), level="advanced")
    select_best: bool = option(False, help="save the best validated model (best_metric) as the output, not the "
                               "last one", level="advanced")

    def __post_init__(self):
        self.threads = _check_threads(self.threads)
        check(self)
        _check_int(self, "steps", "decay_steps", "batch_size", "crop", "seed", "log_every", "preview_every",
                   "validate_every", "checkpoint_every")
        if self.lr <= 0:
            raise ConfigError(f"`lr`={self.lr!r} must be > 0.", "pass a positive `lr`, e.g. 2e-4.", setting="lr")
        if self.lambda_l1 == 0 and self.lambda_gan == 0:
            raise ConfigError("`lambda_l1` and `lambda_gan` are both 0, so the generator has nothing to learn.",
                              "keep `lambda_l1` 100 (the paper's) and/or `lambda_gan` 1.", setting="lambda_l1")
        if self.decay_steps is not None and not 0 <= self.decay_steps <= self.steps:
            raise ConfigError(f"`decay_steps`={self.decay_steps} is outside 0..`steps` ({self.steps}).",
                              "pass `decay_steps` between 0 and `steps`.", setting="decay_steps")

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
    behaviour: dropout on and batch statistics). ``output_dtype``: ``target`` (the dtype and
    value range B was trained on), ``input`` (the image's) or a numpy dtype name.
    """

    tile: int = option(512, range=(0, 16384), unit="px", help="tile side in pixels (0: the whole image at once)")
    overlap: int = option(64, range=(0, 8192), unit="px",
                          help="pixels shared by neighbouring tiles, blended smoothly (below half the tile)")
    mode: str = option("eval", choices=TEST_MODE_CHOICES, label="test-time mode",
                       help="eval (deterministic) or train (the paper's: dropout and batch statistics)")
    batch_size: int = option(4, range=(1, 256), level="advanced", flag="--tile-batch",
                             help="tiles per forward pass")
    device: str = option("auto", choices=DEVICE_CHOICES, pattern=DEVICE_PATTERN, pattern_hint="cuda:N",
                         help="where to run: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    precision: str = option("fp32", choices=PRECISION_CHOICES, level="advanced",
                            help="autocast precision: fp32, bf16 or fp16 (CUDA)")
    seed: int | None = option(None, range=(0, MAX_SEED), level="advanced",
                              help="random seed for test-time mode train (default: unseeded)")
    output_dtype: str = option("target", choices=OUTPUT_DTYPE_CHOICES, pattern=OUTPUT_DTYPE_PATTERN, pattern_hint="a numpy dtype name",
                               faces=("cli", "napari"),
                               help="output type: target (the dtype and value range the model was trained "
                                    "to produce), input (the image's) or a dtype such as float32")
    samples: int = option(1, range=(1, 1024), level="advanced",
                          help="stochastic passes (dropout on, batch-norm running statistics) averaged into "
                               "the output; above 1 also gives a per-pixel standard deviation (uncertainty)")
    realism: bool = option(False, level="advanced", faces=("napari", "nodes"),
                           help="also compute the discriminator's realism map (probability real), aligned "
                                "to the output")
    backend: str = option("auto", choices=BACKEND_CHOICES, level="advanced", faces=("cli",),
                          help="what runs the network: auto (by the model file: .onnx on onnxruntime, "
                               ".safetensors on torch), torch or onnxruntime (no torch needed)")
    threads: str = option("auto", choices=("auto",), pattern=r"[1-9][0-9]*", pattern_hint="N", level="advanced",
                          help="CPU threads for translation: auto (the cores this process may use) or a number")

    def __post_init__(self):
        self.threads = _check_threads(self.threads)
        check(self)
        _check_int(self, "tile", "overlap", "batch_size", "seed", "samples")
        if self.tile and self.overlap * 2 >= self.tile:
            raise ConfigError(f"`overlap`={self.overlap} is too large for `tile`={self.tile}.",
                              "use an `overlap` below half the `tile` size, e.g. `tile` 512 with `overlap` 64.",
                              setting="overlap")


def _check_threads(value):
    """``'auto'`` or a number of threads, kept as text (``2`` -> ``'2'``) so that one schema
    pattern describes it; :func:`napari_pix2pix.threads.choose_threads` reads either."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return str(value)
    if isinstance(value, str) and (value == "auto" or (value.isdigit() and int(value) >= 1)):
        return value
    raise ConfigError(f"`threads`={value!r} is neither auto nor a positive number.", "pass `threads` auto, 1, 2, ...",
                      setting="threads")


@dataclass
class ExportConfig(_Serialisable):
    """How a model is written for use elsewhere (see :mod:`napari_pix2pix.export`).

    ``format``: ``onnx`` (one .onnx file, eval-mode graph with dynamic batch/height/width) or
    ``bioimageio`` (a bioimage.io model package: a folder, or a .zip). ``opset``: the ONNX opset.
    """

    format: str = option("onnx", choices=EXPORT_FORMATS, faces=("cli", "nodes"),
                         help="onnx (a .onnx file for onnxruntime and other runtimes) or bioimageio "
                              "(a model package for Fiji/deepImageJ, ilastik, QuPath: a folder or .zip)")
    opset: int = option(17, range=(13, 21), level="advanced", faces=("cli",),
                        help="ONNX opset version of the exported graph")

    def __post_init__(self):
        check(self)
        _check_int(self, "opset")


_SUBCONFIGS = {
    ("DataConfig", "norm_a"): NormConfig,
    ("DataConfig", "norm_b"): NormConfig,
    ("TrainConfig", "augment"): AugmentConfig,
}
