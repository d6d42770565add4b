"""Command line: ``python -m napari_pix2pix`` or ``napari-pix2pix``.

Subcommands: ``pair`` (validate and describe a paired source), ``train``, ``translate``, ``info``,
``demo``. Exit codes: 0 success, 1 bad input (one-line message), 2 usage error (argparse).
The CLI is a face: it parses options into the engine's configuration dataclasses and calls the
engine; no training or translation logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import (BEST_METRIC_DIRECTIONS, DEVICE_CHOICES, DIRECTION_CHOICES, GAN_MODE_CHOICES, GENERATOR_CHOICES, NORM_CHOICES, NORM_MODE_CHOICES,
                     PRECISION_CHOICES, TEST_MODE_CHOICES, DataConfig, ModelConfig, NormConfig, TileConfig,
                     TrainConfig)
from .errors import Pix2PixError

_DEFAULT_MODEL = ModelConfig()
_DEFAULT_TRAIN = TrainConfig()
_DEFAULT_TILE = TileConfig()


# ------------------------------------------------------------------------------- options
def _add_source_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paired source (one of: --source/--target, --ab-folder, --source with channels)")
    g.add_argument("--source", help="A: an image file (2-D or a stack) or a folder")
    g.add_argument("--target", help="B: an image file or a folder matched to --source by file name")
    g.add_argument("--ab-folder", help="a folder of side-by-side AB images")
    g.add_argument("--direction", choices=DIRECTION_CHOICES, default="AtoB", help="for --ab-folder")
    g.add_argument("--channels-a", type=int, nargs="+", help="channels of --source used as A")
    g.add_argument("--channels-b", type=int, nargs="+", help="channels of --source used as B")
    g.add_argument("--norm-a", choices=NORM_MODE_CHOICES, help="normalisation of A (default: percentile, "
                   "or labels for label images)")
    g.add_argument("--norm-b", choices=NORM_MODE_CHOICES, help="normalisation of B")
    g.add_argument("--per-image", action="store_true", help="percentiles per image instead of per dataset")
    g.add_argument("--percentiles", type=float, nargs=2, metavar=("LOW", "HIGH"), default=(1.0, 99.8))
    g.add_argument("--labels-a", action=argparse.BooleanOptionalAction, default=None,
                   help="treat A as a label image (default: detect)")
    g.add_argument("--labels-b", action=argparse.BooleanOptionalAction, default=None,
                   help="treat B as a label image (default: detect)")
    g.add_argument("--validation", type=float, default=0.0, help="held-out fraction for validation")
    g.add_argument("--foreground-bias", type=float, default=0.0,
                   help="probability of re-drawing patches until they hold foreground")


def _data_config(args) -> DataConfig:
    low, high = args.percentiles

    def norm(mode):
        return NormConfig(mode=mode or "percentile", per_image=args.per_image, low=low, high=high)

    return DataConfig(norm_a=norm(args.norm_a), norm_b=norm(args.norm_b), a_is_labels=args.labels_a,
                      b_is_labels=args.labels_b,
                      channels_a=tuple(args.channels_a) if args.channels_a else None,
                      channels_b=tuple(args.channels_b) if args.channels_b else None,
                      direction=args.direction, validation_fraction=args.validation,
                      foreground_bias=args.foreground_bias)


def _usage(parser: argparse.ArgumentParser, message: str):
    parser.error(message)  # exits 2


def load_dataset(args, parser):
    """The :class:`PairedDataset` named by the source options."""
    from .data import sources

    config = _data_config(args)
    if args.ab_folder:
        if args.source or args.target:
            _usage(parser, "use either --ab-folder or --source/--target, not both")
        return sources.from_ab_folder(args.ab_folder, config)
    if not args.source:
        _usage(parser, "a source is required: --source A --target B, or --ab-folder DIR")
    if args.channels_a or args.channels_b:
        if not (args.channels_a and args.channels_b) or args.target:
            _usage(parser, "--channels-a and --channels-b go together, with --source and no --target")
        from .io import read_image

        return sources.from_channels(read_image(args.source), args.channels_a, args.channels_b, config)
    if not args.target:
        _usage(parser, "--target is required with --source (or use --channels-a/--channels-b)")
    return sources.from_paths(args.source, args.target, config)


# ------------------------------------------------------------------------------ commands
def cmd_pair(args, parser) -> int:
    from .data.validate import PairingReport

    try:
        dataset = load_dataset(args, parser)
    except Pix2PixError as exc:
        report = getattr(exc, "report", None)
        if isinstance(report, PairingReport):
            if args.json:
                print(json.dumps(report.to_dict(), indent=2))
            else:
                print(report.format())
        raise
    description = dataset.describe()
    if args.write_ab:
        from .data.sources import write_ab

        written = write_ab(dataset, args.write_ab)
        description["written_ab"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(description, indent=2, default=str))
    else:
        for key, value in description.items():
            print(f"{key}: {value}")
    return 0


def _progress_bar(total: int, desc: str, initial: int = 0, quiet: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=quiet, dynamic_ncols=True,
                file=sys.stderr)


def cmd_train(args, parser) -> int:
    from .checkpoint import preflight_training
    from .paths import check_output
    from .training import FinishedEvent, SavedEvent, StepEvent, Trainer

    check_output(args.out, [args.source, args.target], args.overwrite, overwrite_setting="--overwrite",
                 suffixes=(".safetensors",), what="model file --out")
    dataset = load_dataset(args, parser)
    train_set, val_set = dataset.split(args.validation, seed=args.seed) if args.validation else (dataset, None)
    model = ModelConfig(generator=args.generator, in_channels=dataset.in_channels,
                        out_channels=dataset.out_channels, ngf=args.ngf, ndf=args.ndf, norm=args.norm,
                        dropout=not args.no_dropout, discriminator=args.discriminator,
                        discriminator_layers=args.discriminator_layers)
    config = TrainConfig(steps=args.steps, decay_steps=args.decay_steps, batch_size=args.batch_size,
                         crop=args.crop, lr=args.lr, lambda_l1=args.lambda_l1, lambda_gan=args.lambda_gan,
                         best_metric=args.best_metric, gan_mode=args.gan_mode,
                         seed=args.seed, device=args.device, precision=args.precision,
                         channels_last=args.channels_last, compile=args.compile,
                         checkpoint_every=args.checkpoint_every, checkpoint_dir=args.checkpoint_dir,
                         validate_every=args.validate_every if val_set is not None else 0,
                         preview_every=0, log_every=args.log_every)
    preflight_training(model, args.out, args.checkpoint_dir)  # before any step: writable, room for it
    trainer = Trainer(model, config, train_set, val_dataset=val_set, out=args.out, resume=args.resume)
    bar = _progress_bar(config.steps, "train", initial=trainer.step, quiet=args.quiet)
    last = None
    try:
        for event in trainer.events():
            if isinstance(event, StepEvent):
                bar.update(1)
                if event.step % max(config.log_every, 1) == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in event.losses.items()})
            elif isinstance(event, SavedEvent) and not args.quiet:
                bar.write(f"saved {event.path} (step {event.step})")
            elif isinstance(event, FinishedEvent):
                last = event
    except KeyboardInterrupt:
        trainer.stop()
        path = trainer.save(args.out)
        bar.write(f"interrupted: saved {path} at step {trainer.step}")
        return 1
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {last.path} after {last.step} steps in {last.seconds:.1f} s")
    return 0


def _inputs(path: Path) -> list[Path]:
    from .io import IMAGE_EXTENSIONS

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise Pix2PixError(f"folder {str(path)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}).",
                               "choose a folder with images, or a single image file.")
        return files
    return [path]


def cmd_translate(args, parser) -> int:
    from .inference import translate
    from .io import read_image, write_image
    from .model import Pix2PixModel

    config = TileConfig(tile=args.tile, overlap=args.overlap, mode=args.mode, batch_size=args.tile_batch,
                        device=args.device, precision=args.precision, seed=args.seed)
    from .paths import check_output, preflight

    src, dst = Path(args.input), Path(args.output)
    files = _inputs(src)
    targets = [dst / (f.stem + (args.suffix or f.suffix)) if src.is_dir() else dst for f in files]
    for f, target in zip(files, targets):  # before any work: never replace an input, or a file unasked
        check_output(target, [f, args.model], args.overwrite, overwrite_setting="--overwrite")
    preflight(targets[0], sum(f.stat().st_size for f in files), "output")
    model = Pix2PixModel.load(args.model, device=config.device)
    for f, target in zip(files, targets):
        image = read_image(f)
        out = translate(model, image, config=config, output_dtype=args.output_dtype,
                        channel_axis=args.channel_axis)
        write_image(target, out)
        if not args.quiet:
            print(f"{f} -> {target} {out.shape} {out.dtype}")
    return 0


def cmd_info(args, parser) -> int:
    from .model import Pix2PixModel

    info = Pix2PixModel.load(args.model).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        rows = ["generator", "in_channels", "out_channels", "ngf", "norm", "dropout", "parameters",
                "discriminator", "discriminator_layers", "discriminator_parameters", "receptive_field", "steps",
                "trained_on", "metrics", "library_version", "sha256"]
        for key in rows:
            print(f"{key:>26}: {info.get(key)}")
    return 0


def _display_available() -> bool:
    import importlib.util
    import os

    if os.environ.get("CI") or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    if importlib.util.find_spec("napari") is None:
        print("demo: napari is not installed, so no viewer opens (pip install 'napari-pix2pix[napari]').")
        return False
    return True


def cmd_demo(args, parser) -> int:
    from .demo import run_demo

    summary = run_demo(out_dir=args.out, seconds=args.seconds)
    if not args.headless and _display_available():
        from ._napari.demo import show_demo

        show_demo(summary)
    return 0


def cmd_import(args, parser) -> int:
    from .paths import check_output
    from .reference import import_reference

    check_output(args.out, [args.checkpoint, args.discriminator], args.overwrite, overwrite_setting="--overwrite",
                 suffixes=(".safetensors",), what="model file --out")
    result = import_reference(args.checkpoint, args.out, generator=args.generator, norm=args.norm, ngf=args.ngf,
                              in_channels=args.in_channels, out_channels=args.out_channels,
                              dropout=False if args.no_dropout else None, discriminator=args.discriminator,
                              discriminator_layers=args.discriminator_layers, ndf=args.ndf)
    if not args.quiet:
        m = result.model
        print(f"wrote {result.path}: {m.generator}, norm {m.norm}, ngf {m.ngf}, {m.in_channels} -> "
              f"{m.out_channels} channels, dropout {'on' if m.dropout else 'off'}"
              + (f", with a {m.discriminator} discriminator" if args.discriminator else ""))
        for note in result.notes:
            print(f"note: {note}")
    return 0


def cmd_evaluate(args, parser) -> int:
    from .evaluate import run_cli

    return run_cli(args)


# ------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-pix2pix", description="Pix2Pix image-to-image translation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pair", help="validate and describe a paired source; exit 1 on any mismatch")
    _add_source_options(p)
    p.add_argument("--write-ab", metavar="OUT", help="also write side-by-side AB files to this folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pair)

    p = sub.add_parser("train", help="train a model on a paired source")
    _add_source_options(p)
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--steps", type=int, default=_DEFAULT_TRAIN.steps)
    p.add_argument("--decay-steps", type=int, default=None, help="linear-decay steps at the end (default half)")
    p.add_argument("--generator", default=_DEFAULT_MODEL.generator,
                   help=f"one of {', '.join(GENERATOR_CHOICES)} (unet_N: N = 2**levels)")
    p.add_argument("--ngf", type=int, default=_DEFAULT_MODEL.ngf)
    p.add_argument("--ndf", type=int, default=_DEFAULT_MODEL.ndf)
    p.add_argument("--discriminator", choices=("patch", "pixel", "image"), default=_DEFAULT_MODEL.discriminator)
    p.add_argument("--discriminator-layers", type=int, default=_DEFAULT_MODEL.discriminator_layers)
    p.add_argument("--norm", choices=NORM_CHOICES, default=_DEFAULT_MODEL.norm)
    p.add_argument("--no-dropout", action="store_true")
    p.add_argument("--crop", type=int, default=_DEFAULT_TRAIN.crop)
    p.add_argument("--batch-size", type=int, default=_DEFAULT_TRAIN.batch_size)
    p.add_argument("--lr", type=float, default=_DEFAULT_TRAIN.lr)
    p.add_argument("--lambda-l1", type=float, default=_DEFAULT_TRAIN.lambda_l1)
    p.add_argument("--lambda-gan", type=float, default=_DEFAULT_TRAIN.lambda_gan,
                   help="weight of the generator's GAN term (0: L1 only)")
    p.add_argument("--best-metric", choices=tuple(BEST_METRIC_DIRECTIONS), default=_DEFAULT_TRAIN.best_metric,
                   help="validation metric that picks best.safetensors")
    p.add_argument("--gan-mode", choices=GAN_MODE_CHOICES, default=_DEFAULT_TRAIN.gan_mode)
    p.add_argument("--seed", type=int, default=_DEFAULT_TRAIN.seed)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (slow first step)")
    p.add_argument("--resume", help="continue from this model file (weights, optimizers, step, RNG)")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--checkpoint-dir")
    p.add_argument("--validate-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("translate", help="translate an image file or a folder with a model")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="image file (tif/png/jpg/npy) or folder")
    p.add_argument("--output", required=True, help="output file, or folder when --input is a folder")
    p.add_argument("--tile", type=int, default=_DEFAULT_TILE.tile, help="tile size in pixels (0: untiled)")
    p.add_argument("--overlap", type=int, default=_DEFAULT_TILE.overlap)
    p.add_argument("--tile-batch", type=int, default=_DEFAULT_TILE.batch_size)
    p.add_argument("--mode", choices=TEST_MODE_CHOICES, default=_DEFAULT_TILE.mode,
                   help="eval (default, deterministic) or train (the paper's: dropout and batch statistics)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32")
    p.add_argument("--seed", type=int, default=None, help="seed for --mode train")
    p.add_argument("--output-dtype", default="input", help="input (default), target, or a dtype such as float32")
    p.add_argument("--channel-axis", type=int, default=None, help="channel axis of the input (default: detect)")
    p.add_argument("--suffix", help="output file extension for folders (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("info", help="describe a model file")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="train briefly on the bundled nuclei pair, translate, write a PNG")
    p.add_argument("--out", default="demo-output")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--headless", action="store_true", help="never open napari")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", help="convert a reference pix2pix checkpoint (*_net_G.pth) to a model file")
    p.add_argument("checkpoint", help="generator state_dict saved by pytorch-CycleGAN-and-pix2pix (*_net_G.pth)")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--discriminator", metavar="D.pth", help="also import its discriminator (*_net_D.pth)")
    p.add_argument("--generator", help=f"one of {', '.join(GENERATOR_CHOICES)} (default: read from the file)")
    p.add_argument("--norm", choices=("batch", "instance"), help="default: read from the file")
    p.add_argument("--ngf", type=int, help="default: read from the file")
    p.add_argument("--in-channels", type=int, help="default: read from the file")
    p.add_argument("--out-channels", type=int, help="default: read from the file")
    p.add_argument("--no-dropout", action="store_true",
                   help="the U-Net was trained with --no_dropout (a U-Net file cannot say; default: dropout on)")
    p.add_argument("--discriminator-layers", type=int, help="PatchGAN n_layers_D (default: read from the file)")
    p.add_argument("--ndf", type=int, help="default: read from the file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("evaluate", help="metrics (L1, PSNR, SSIM, sharpness, Dice/IoU) of a model on paired "
                       "data; optional SSIM/error maps and a contact sheet")
    from .evaluate import add_arguments as _evaluate_arguments

    _evaluate_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    return parser


def one_line(exc: Pix2PixError) -> str:
    """The error as one line: a multi-line problem (a pairing report) is folded with '; ' and
    shortened past 5 items (``pair`` prints the full report), then the fix."""
    lines = [ln.strip(" -\t") for ln in exc.problem.strip().splitlines() if ln.strip(" -\t")] or [""]
    shown = lines[:5] + ([f"... {len(lines) - 5} more (run `pair` with the same source options for all)"]
                         if len(lines) > 5 else [])
    problem = "; ".join(shown)
    return f"{problem} Fix: {exc.fix}" if exc.fix else problem


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args, parser)
    except Pix2PixError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file the engine did not wrap: still one line, with a fix
        from .paths import write_error

        print(f"error: {one_line(write_error(exc, exc.filename or '?', 'file', 'use'))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
