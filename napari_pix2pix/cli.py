"""Command line: ``python -m napari_pix2pix`` or ``napari-pix2pix``.

Subcommands: ``pair`` (validate and describe a paired source), ``train``, ``translate``,
``evaluate``, ``info``, ``import``, ``demo``, ``export``. Exit codes: 0 success, 1 bad input (one-line
message), 2 usage error (argparse).

The CLI is a face: its options are generated from the schema (:mod:`napari_pix2pix.schema`,
the fields of :mod:`napari_pix2pix.config`) by :func:`add_schema_options`, so flags, defaults,
choices, ranges and help texts are the engine's; it parses them into the configuration
dataclasses and calls the engine. No training or translation logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import AugmentConfig, DataConfig, ModelConfig, NormConfig, TileConfig, TrainConfig
from .data.load import MAX_DETECTED_CHANNELS
from .errors import Pix2PixError
from .schema import Option, check_value, get_option, options_of

FACE = "cli"


# ------------------------------------------------------------------------- schema -> argparse
class HelpFormatter(argparse.HelpFormatter):
    """Every option shows its default (unless its help already speaks of one)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required or not action.option_strings \
                or action.default is argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            return text
        return f"{text} (default: {_shown(action.default)})"


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _base_type(opt: Option) -> str:
    """``int``, ``float``, ``bool``, ``str`` or ``tuple`` from the field's annotation."""
    text = str(opt.type)
    parts = [p.strip() for p in text.split("|") if p.strip() != "None"]
    base = parts[0] if parts else "str"
    return "tuple" if base.startswith("tuple") else base


def _value_parser(opt: Option, convert):
    """An argparse ``type`` that converts and checks the value against the schema, so that an
    out-of-range or unknown value is a usage error (exit 2) naming the flag."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {convert.__name__}") from None
        try:
            check_value(opt, value)
        except Pix2PixError as exc:
            raise argparse.ArgumentTypeError(exc.problem.replace(f"`{opt.name}`=", "", 1)) from None
        return value

    parse.__name__ = convert.__name__
    return parse


def _range_text(opt: Option) -> str | None:
    if opt.range is None:
        return None
    low, high = opt.range
    if high is None or high >= 2**62:
        return f"at least {_shown(low)}"
    if low is None:
        return f"at most {_shown(high)}"
    return f"{_shown(low)}..{_shown(high)}"


def add_schema_option(group, opt: Option, *, flag: str | None = None, dest: str | None = None,
                      default=None, help: str | None = None, use_default: bool = True):
    """Add one schema option to an argparse group: flag ``--field-name`` (or the option's own),
    its help, type, choices (or a pattern check), range check and default. Returns the action;
    ``action.schema_name`` is the option's schema name."""
    flag = flag or opt.cli_flag()
    kind = _base_type(opt)
    value = opt.default if use_default else default
    text = help or opt.help
    notes = [n for n in (opt.unit, _range_text(opt) if kind in ("int", "float") else None) if n]
    if "default" not in text:
        notes.append(f"default: {_shown(value)}")
    if notes:
        text = f"{text} ({'; '.join(notes)})"
    kw: dict = {"dest": dest or opt.name, "default": value}
    if kind == "bool":
        action = group.add_argument(flag, action=argparse.BooleanOptionalAction, help=text, **kw)
    elif kind == "tuple":
        action = group.add_argument(flag, type=int, nargs="+", metavar="N", help=text, **kw)
    elif kind in ("int", "float"):
        convert = int if kind == "int" else float
        action = group.add_argument(flag, type=_value_parser(opt, convert), help=text, metavar=kind.upper(), **kw)
    elif opt.choices is not None and opt.pattern is None:
        action = group.add_argument(flag, choices=opt.choices, help=text, **kw)
    elif opt.choices is not None:
        metavar = "{" + ",".join(map(str, opt.choices)) + (f",{opt.pattern_hint}" if opt.pattern_hint and " " not in opt.pattern_hint else ",...") + "}"
        action = group.add_argument(flag, type=_value_parser(opt, str), metavar=metavar, help=text, **kw)
    else:
        action = group.add_argument(flag, help=text, **kw)
    action.schema_name = opt.name
    return action


def add_schema_options(parser, cls, *, title: str, exclude=(), face: str = FACE) -> list[str]:
    """Add every option of ``cls`` that the CLI shows: basic ones under ``title``, advanced ones
    under ``advanced <title>``. Returns the schema names added (they are also the dests)."""
    basic = parser.add_argument_group(title)
    advanced = None
    names = []
    for opt in options_of(cls, face):
        if opt.name in exclude:
            continue
        if opt.level == "advanced":
            advanced = advanced or parser.add_argument_group(f"advanced {title}")
            add_schema_option(advanced, opt)
        else:
            add_schema_option(basic, opt)
        names.append(opt.name)
    return names


def schema_values(cls, args, names=None) -> dict:
    """The parsed values of ``cls``'s options present in ``args`` (by schema name)."""
    wanted = {o.name for o in options_of(cls)} if names is None else set(names)
    return {k: getattr(args, k) for k in wanted if hasattr(args, k)}


def explicit_flags(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The dests whose flags appear in ``argv`` (the parsers take no abbreviations)."""
    tokens = {t.split("=", 1)[0] for t in argv if t.startswith("-")}
    found = set()
    for action in parser._actions:
        if tokens & set(action.option_strings):
            found.add(action.dest)
    return found


# ------------------------------------------------------------------------------- sources
def _add_source_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paired source (one of: --source/--target, --ab-folder, --source with channels)")
    g.add_argument("--source", help="A: an image file (2-D or a stack) or a folder; with --task colorize: an RGB "
                   "image file or a folder of them (no --target)")
    g.add_argument("--target", help="B: an image file or a folder matched to --source by file name")
    g.add_argument("--ab-folder", help="a folder of side-by-side AB images")
    g.add_argument("--channel-axis", type=int, default=None,
                   help="axis of the channels in a multichannel --source (default: detect a first or last "
                        f"axis of at most {MAX_DETECTED_CHANNELS} channels)")
    add_schema_options(p, DataConfig, title="pairing")
    g = p.add_argument_group("normalisation")
    mode = get_option(NormConfig, "mode")
    for side in ("a", "b"):
        add_schema_option(g, mode, flag=f"--norm-{side}", dest=f"norm_{side}", use_default=False,
                          help=f"normalisation of {side.upper()}: {mode.help} (default: {mode.default}, or "
                               "labels for label images)")
    for side in ("a", "b"):
        g.add_argument(f"--range-{side}", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                       help=f"data values mapped to -1 and +1 for --norm-{side} fixed (implies it)")
    lo, hi = get_option(NormConfig, "low"), get_option(NormConfig, "high")
    g.add_argument("--percentiles", type=float, nargs=2, metavar=("LOW", "HIGH"), default=(lo.default, hi.default),
                   help="percentiles mapped to -1 and +1 for --norm-a/-b percentile")
    add_schema_option(g, get_option(NormConfig, "per_image"))
    add_schema_option(g, get_option(NormConfig, "label_encoding"))


def _usage(parser: argparse.ArgumentParser, message: str):
    parser.error(message)  # exits 2


def _norm_config(args, side: str, parser) -> NormConfig:
    mode = getattr(args, f"norm_{side}")
    data_range = getattr(args, f"range_{side}")
    if data_range is not None:
        if mode not in (None, "fixed"):
            _usage(parser, f"--range-{side} goes with --norm-{side} fixed, not {mode}")
        mode = "fixed"
    if mode == "fixed" and data_range is None:
        _usage(parser, f"--norm-{side} fixed needs the data range: add --range-{side} LOW HIGH")
    low, high = data_range if data_range is not None else args.percentiles
    return NormConfig(mode=mode or "percentile", per_image=args.per_image, low=low, high=high,
                      label_encoding=args.label_encoding)


def _data_config(args, parser) -> DataConfig:
    values = schema_values(DataConfig, args)
    for key in ("channels_a", "channels_b"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return DataConfig(norm_a=_norm_config(args, "a", parser), norm_b=_norm_config(args, "b", parser), **values)


def load_dataset(args, parser, say=print):
    """The :class:`PairedDataset` named by the source options: the flags become one
    :class:`~napari_pix2pix.data.PairSpec`, run once through :func:`~napari_pix2pix.data.pair`."""
    from .data.pipeline import pair
    from .data.spec import PairSpec

    config = _data_config(args, parser)
    if config.task == "colorize":  # issue 18: L -> ab pairs from RGB images; no target
        if args.target or args.ab_folder or not args.source:
            _usage(parser, "--task colorize takes --source RGB_FILE_OR_FOLDER only (no --target, no --ab-folder)")
        from .devices import resolve_device

        spec = PairSpec.colorize(args.source, config, device=resolve_device(getattr(args, "device", None) or "cpu"))
    elif args.ab_folder:
        if args.source or args.target:
            _usage(parser, "use either --ab-folder or --source/--target, not both")
        spec = PairSpec.ab_folder(args.ab_folder, config)
    elif not args.source:
        _usage(parser, "a source is required: --source A --target B, or --ab-folder DIR")
    elif args.channels_a or args.channels_b:
        if not (args.channels_a and args.channels_b) or args.target:
            _usage(parser, "--channels-a and --channels-b go together, with --source and no --target")
        spec = PairSpec.channels(args.source, args.channels_a, args.channels_b, config,
                                 channel_axis=args.channel_axis)  # None: detected (and announced)
    elif not args.target:
        _usage(parser, "--target is required with --source (or use --channels-a/--channels-b)")
    elif args.channel_axis is not None:
        if not (Path(args.source).is_file() and Path(args.target).is_file()):
            _usage(parser, "--channel-axis with --target needs two files (folders are read as they are)")
        spec = PairSpec.files(args.source, args.target, config, channel_axis=args.channel_axis)
    else:
        spec = PairSpec.paths(args.source, args.target, config)
    return pair(spec, say=say)


# ------------------------------------------------------------------------------- output
def _table(rows, header=None) -> str:
    rows = [[str(c) for c in r] for r in rows]
    if header:
        rows = [list(header)] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _norm_text(norm: dict) -> str:
    mode = norm.get("mode")
    if mode == "labels":
        return f"labels ({norm.get('label_encoding')}, {norm.get('n_classes')} classes)"
    if mode in ("percentile", "fixed"):
        pct = norm.get("percentiles")
        where = f"percentiles {pct[0]:g}..{pct[1]:g} -> " if mode == "percentile" and pct else ""
        per = ", per image" if norm.get("per_image") else ""
        return f"{mode}: {where}{norm.get('low'):.4g}..{norm.get('high'):.4g}{per}"
    return str(mode)


def format_description(d: dict) -> str:
    """``pair``'s text: a line of totals and one row per side."""
    rows = []
    for side in ("a", "b"):
        s = d[side]
        shapes = ", ".join(f"{k} (x{n})" if n > 1 else k for k, n in s["shapes"].items())
        rows.append([side.upper(), shapes, s["dtype"], f"{s['channels']} -> {s['model_channels']}",
                     "yes" if s["is_labels"] else "no", _norm_text(s["normalization"])])
    head = f"{d['pairs']} pair(s), {d['pixels']:,} pixels, {d['in_channels']} -> {d['out_channels']} model channels"
    source = d.get("source") or {}
    lines = [head + (f"  [{source.get('kind')}]" if source.get("kind") else ""),
             _table(rows, ("side", "shapes (C x H x W)", "dtype", "channels", "labels", "normalisation"))]
    if d.get("written_ab"):
        lines.append(f"wrote {len(d['written_ab'])} AB file(s)")
    return "\n".join(lines)


def _say(quiet: bool):
    return (lambda *a, **k: None) if quiet else (lambda text: print(text, file=sys.stderr))


# ------------------------------------------------------------------------------ commands
def cmd_pair(args, parser) -> int:
    from .data.validate import PairingReport

    try:
        dataset = load_dataset(args, parser, say=_say(args.json))
    except Pix2PixError as exc:
        report = getattr(exc, "report", None)
        if isinstance(report, PairingReport):
            print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
        raise
    description = dataset.describe()
    if args.write_ab:
        from .data.sources import write_ab

        description["written_ab"] = [str(p) for p in write_ab(dataset, args.write_ab)]
    print(json.dumps(description, indent=2, default=str) if args.json else format_description(description))
    return 0


def _progress_bar(total: int, desc: str, initial: int = 0, quiet: bool = False):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=quiet, dynamic_ncols=True,
                file=sys.stderr)


def format_validation(step: int, metrics: dict, best=None) -> str:
    """One line per validation: step, L1, PSNR, SSIM (and Dice/IoU), best so far."""
    parts = [f"validation at step {step}:"]
    for key, fmt in (("L1", "{:.4f}"), ("PSNR", "{:.2f} dB"), ("SSIM", "{:.4f}"), ("Dice", "{:.4f}"),
                     ("IoU", "{:.4f}")):
        if metrics.get(key) is not None:
            parts.append(f"{key} " + fmt.format(metrics[key]))
    if best is not None and getattr(best, "best", None) is not None:
        parts.append(f"(best {best.metric} {best.best:.4g} at step {best.step})")
    return "  ".join(parts)


def _train_configs(args, parser, argv, dataset) -> tuple[ModelConfig, TrainConfig, str | None]:
    """Schema defaults, then the preset's overrides (with ``--resume`` and no ``--preset``: the
    resumed file's training settings), then the flags given on the command line."""
    from .presets import apply_preset, default_preset

    given = explicit_flags(parser, argv)
    model_names = [o.name for o in options_of(ModelConfig, FACE)]
    train_names = [o.name for o in options_of(TrainConfig, FACE)]
    aug_names = [o.name for o in options_of(AugmentConfig, FACE)]
    preset = args.preset
    model = ModelConfig(in_channels=dataset.in_channels, out_channels=dataset.out_channels)
    train = TrainConfig(preview_every=0)
    if preset == "auto" and args.resume:
        from .checkpoint import load_checkpoint

        saved = load_checkpoint(args.resume).training  # continue with the file's settings
        if saved is not None:
            train = saved.replace(preview_every=0)
        preset = None
    elif preset == "auto":
        preset = default_preset(args.device)
    if preset is not None:
        model, train = apply_preset(preset, model), apply_preset(preset, train)
    model = model.replace(**{k: getattr(args, k) for k in model_names if k in given})
    augment = train.augment.replace(**{k: getattr(args, k) for k in aug_names if k in given})
    train = train.replace(augment=augment, **{k: getattr(args, k) for k in train_names if k in given})
    if "validate_every" in given and train.validate_every and not dataset_has_validation(args):
        _usage(parser, "--validate-every needs a held-out split: add --validation FRACTION (e.g. 0.1)")
    return model, train, preset


def dataset_has_validation(args) -> bool:
    return bool(args.validation_fraction)


def cmd_train(args, parser, argv=()) -> int:
    from .checkpoint import preflight_training
    from .paths import check_output
    from .training import FinishedEvent, SavedEvent, SpeedEvent, StepEvent, ThreadsEvent, Trainer, ValidationEvent

    check_output(args.out, [args.source, args.target], args.overwrite, overwrite_setting="--overwrite",
                 suffixes=(".safetensors",), what="model file --out")
    say = _say(args.quiet)
    dataset = load_dataset(args, parser, say=say)
    model, config, preset = _train_configs(args, parser, argv, dataset)
    train_set, val_set = dataset.holdout(args.validation_fraction)
    if val_set is None:
        config = config.replace(validate_every=0)
    say(f"{'preset ' + preset if preset else 'resumed settings'}: {model.generator} ngf {model.ngf} ndf {model.ndf}, crop {config.crop}, "
        f"batch {config.batch_size}, {config.steps} steps")
    if args.estimate and not args.quiet and args.resume is None:
        from .presets import estimate_duration

        est = estimate_duration(model, config, device=config.device, steps=config.steps, dataset=train_set)
        say(f"estimated duration: {est.text}")
    preflight_training(model, args.out, config.checkpoint_dir)  # before any step: writable, room for it
    trainer = Trainer(model, config, train_set, val_dataset=val_set, out=args.out, resume=args.resume)
    bar = _progress_bar(config.steps, "train", initial=trainer.step, quiet=args.quiet)
    last, saved = None, []
    from .metrics import CollapseGuard  # warns once when the validation output goes flat

    guard = CollapseGuard(notify=lambda message: bar.write(f"warning: {message}", file=sys.stderr))
    try:
        for event in trainer.events():
            if isinstance(event, StepEvent):
                bar.update(1)
                if event.step % max(config.log_every, 1) == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in event.losses.items()})
            elif isinstance(event, ValidationEvent):
                guard(event)
                if not args.quiet:
                    bar.write(format_validation(event.step, event.metrics, getattr(trainer, "best", None)),
                              file=sys.stderr)
            elif isinstance(event, SavedEvent):
                saved.append(event.path)
                if not args.quiet:
                    bar.write(f"saved {event.path} (step {event.step}{', best so far' if event.best else ''})",
                              file=sys.stderr)
            elif isinstance(event, SpeedEvent):
                bar.set_description(f"train [{event.line}]")
            elif isinstance(event, ThreadsEvent) and not args.quiet:
                bar.write(f"step {event.step}: {event.line}", file=sys.stderr)
            elif isinstance(event, FinishedEvent):
                last = event
    except KeyboardInterrupt:
        trainer.stop()
        path = trainer.save(args.out)
        bar.write(f"interrupted: saved {path} at step {trainer.step}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    if not args.quiet and last is not None:
        rate = last.step / last.seconds if last.seconds else 0.0
        why = " (time limit reached)" if last.reason == "time_limit" else ""
        summary = f"done: {last.step} steps in {_duration(last.seconds)}{why} ({rate:.2f} steps/s); model {last.path}"
        if trainer.threads is not None:
            summary += f"; {trainer.threads.line()}"
        best = getattr(trainer, "best", None)
        if best is not None and getattr(best, "best", None) is not None:
            summary += f"; best {best.metric} {best.best:.4g} at step {best.step}"
        print(summary)
    return 0


def _duration(seconds: float) -> str:
    from .presets import format_duration

    return format_duration(seconds)


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
    from .io import read_image, write_image
    from .paths import check_output, preflight
    from .predict import Predictor

    config = TileConfig(**schema_values(TileConfig, args))
    from .predict import resolve_backend

    torch_backend = resolve_backend(args.model, config.backend) == "torch"
    if torch_backend and config.device in ("cpu", "auto"):  # the thread policy (the process ends with the command)
        from .threads import apply_threads, choose_threads

        apply_threads(choose_threads(config.threads))
    src, dst = Path(args.input), Path(args.output)
    files = _inputs(src)
    targets = [dst / (f.stem + (args.suffix or f.suffix)) if src.is_dir() else dst for f in files]
    for f, target in zip(files, targets):  # before any work: never replace an input, or a file unasked
        check_output(target, [f, args.model], args.overwrite, overwrite_setting="--overwrite")
    preflight(targets[0], sum(f.stat().st_size for f in files), "output")
    if args.uncertainty and config.samples < 2:
        _usage(parser, "--uncertainty needs --samples N with N >= 2 (e.g. --samples 8)")
    # every model (translate or colorize) and every mode (one pass, samples, realism) runs through one Predictor
    predictor = Predictor.load(args.model, config=config)  # backend: config.backend (auto: by the file)
    if config.samples > 1 or args.uncertainty or args.realism:
        from .uncertainty import write_maps

        for f, target in zip(files, targets):
            write_maps(predictor, read_image(f), target, config=config, samples=config.samples,
                       uncertainty=args.uncertainty, realism=args.realism, folder=src.is_dir(),
                       output_dtype=config.output_dtype, channel_axis=args.channel_axis, quiet=args.quiet)
        return 0
    for f, target in zip(files, targets):
        image = read_image(f)
        out = predictor.predict(image, output_dtype=config.output_dtype, channel_axis=args.channel_axis)
        write_image(target, out)
        if not args.quiet:
            print(f"{f} -> {target} {out.shape} {out.dtype}")
    return 0


def _imported_from(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


INFO_ROWS = ("task", "generator", "in_channels", "out_channels", "ngf", "norm", "dropout", "parameters", "discriminator",
             "discriminator_layers", "discriminator_parameters", "receptive_field", "steps", "trained_on",
             "metrics", "imported_from", "library_version", "sha256")


def cmd_info(args, parser) -> int:
    from .model import Pix2PixModel

    info = Pix2PixModel.load(args.model).info()
    info["imported_from"] = _imported_from(info.get("imported_from"))
    info["has_discriminator"] = bool(info.get("discriminator_parameters"))
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key in INFO_ROWS:
        value = info.get(key)
        if not info["has_discriminator"] and key in ("discriminator", "discriminator_layers",
                                                     "discriminator_parameters"):
            if key != "discriminator":
                continue
            value = "none in this file (continued training starts a new one)"
        if key == "imported_from" and value is None:
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        print(f"{key:>26}: {value}")
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

    summary = run_demo(out_dir=args.out, seconds=args.seconds, threads=args.threads)
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


def cmd_export(args, parser) -> int:
    from .config import ExportConfig
    from .export import export_model

    result = export_model(args.model, args.out, config=ExportConfig(**schema_values(ExportConfig, args)))
    if not args.quiet:
        parity = ", ".join(f"{k}: {v:.2g}" for k, v in (result.parity or {}).items())
        print(f"wrote {result.path}" + (f" (measured max |difference| {parity})" if parity else ""))
    return 0


def cmd_evaluate(args, parser) -> int:
    from .evaluate import evaluate

    config = TileConfig(**schema_values(TileConfig, args))
    result = evaluate(args.model, args.source, args.target, config=config, maps_dir=args.maps,
                      sheet=args.sheet, sheet_rows=args.sheet_rows)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(result.format_table())
    if result.maps:
        print(f"wrote {len(result.maps)} maps to {args.maps}")
    if result.sheet:
        print(f"wrote contact sheet {result.sheet} (input | output | target | error)")
    return 0


# ------------------------------------------------------------------------------- parser
def _subparser(sub, name: str, help: str, func):
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter, allow_abbrev=False)
    p.set_defaults(func=func, command_parser=p)
    return p


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    parser = argparse.ArgumentParser(prog="napari-pix2pix", description="Pix2Pix image-to-image translation.",
                                     formatter_class=HelpFormatter, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    p = _subparser(sub, "pair", "validate and describe a paired source; exit 1 on any mismatch", cmd_pair)
    _add_source_options(p)
    p.add_argument("--write-ab", metavar="OUT", help="also write side-by-side AB files to this folder")
    p.add_argument("--json", action="store_true", help="print the description as JSON (for scripts)")

    p = _subparser(sub, "train", "train a model on a paired source", cmd_train)
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--preset", choices=("auto",) + tuple(PRESETS), default="auto",
                   help="named settings, overridden by the flags given: "
                        + "; ".join(f"{k}: {v.help}" for k, v in PRESETS.items())
                        + "; auto: quick-cpu on a CPU, paper on a GPU")
    p.add_argument("--resume", help="continue from this model file (weights, optimizers, step, RNG)")
    p.add_argument("--estimate", action=argparse.BooleanOptionalAction, default=True,
                   help="time a few steps first and print the estimated duration")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_source_options(p)
    add_schema_options(p, ModelConfig, title="model")
    add_schema_options(p, TrainConfig, title="training")
    add_schema_options(p, AugmentConfig, title="augmentation")

    p = _subparser(sub, "translate", "translate an image file or a folder with a model", cmd_translate)
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--input", required=True, help="image file (tif/png/jpg/npy) or folder")
    p.add_argument("--output", required=True, help="output file, or folder when --input is a folder")
    p.add_argument("--channel-axis", type=int, default=None,
                   help="channel axis of the input (default: detect; the last axis for RGB)")
    p.add_argument("--suffix", help="output file extension for folders (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--uncertainty", metavar="STD_FILE", help="write the per-pixel standard deviation of the "
                   "--samples passes here (float32 tif, same shape as the output; a folder for an input folder)")
    p.add_argument("--realism", metavar="MAP_FILE", help="write the discriminator's realism map (probability "
                   "real, float32 [Y, X], aligned to the output; a folder for an input folder)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_schema_options(p, TileConfig, title="inference")

    p = _subparser(sub, "evaluate", "metrics (L1, PSNR, SSIM, sharpness, Dice/IoU) of a model on paired data; "
                   "optional SSIM/error maps and a contact sheet; a colorize model is scored in RGB on colour "
                   "images (--source alone)", cmd_evaluate)
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--source", required=True, help="A: image file or folder (or an AB file/folder without --target)")
    p.add_argument("--target", help="B: image file or folder matched to --source by file name")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--maps", metavar="DIR", help="write per-image SSIM and error maps (float32 tif) and "
                   "contact_sheet.png to this folder")
    p.add_argument("--sheet", metavar="PATH", help="write the contact sheet (input | output | target | error) "
                   "to this PNG")
    p.add_argument("--sheet-rows", type=int, default=8, help="images on the contact sheet")
    add_schema_options(p, TileConfig, title="inference", exclude=("output_dtype", "backend", "samples"))

    from .config import ExportConfig

    p = _subparser(sub, "export", "write a model as ONNX or as a bioimage.io package, to use it elsewhere",
                   cmd_export)
    p.add_argument("model", help="model file (.safetensors)")
    p.add_argument("--out", required=True, help="output: model.onnx, or a folder / .zip for bioimageio")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_schema_options(p, ExportConfig, title="export")

    p = _subparser(sub, "info", "describe a model file", cmd_info)
    p.add_argument("model", help="model file (.safetensors)")
    p.add_argument("--json", action="store_true", help="print everything as JSON")

    p = _subparser(sub, "demo", "train briefly on the bundled nuclei pair, translate, write a PNG", cmd_demo)
    p.add_argument("--out", default="demo-output", help="folder for the demo's files")
    p.add_argument("--seconds", type=float, default=60.0, help="training time")
    p.add_argument("--headless", action="store_true", help="never open napari")
    p.add_argument("--threads", default=get_option(TrainConfig, "threads").default,
                   help=get_option(TrainConfig, "threads").help)

    generator, norm = get_option(ModelConfig, "generator"), get_option(ModelConfig, "norm")
    p = _subparser(sub, "import", "convert a reference pix2pix checkpoint (*_net_G.pth) to a model file", cmd_import)
    p.add_argument("checkpoint", help="generator state_dict saved by pytorch-CycleGAN-and-pix2pix (*_net_G.pth)")
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--discriminator", metavar="D.pth", help="also import its discriminator (*_net_D.pth)")
    add_schema_option(p, generator, use_default=False, help=generator.help + " (default: read from the file)")
    p.add_argument("--norm", choices=tuple(c for c in norm.choices if c != "none"),
                   help="normalisation layers (default: read from the file)")
    p.add_argument("--ngf", type=int, help="generator filters (default: read from the file)")
    p.add_argument("--in-channels", type=int, help="input channels (default: read from the file)")
    p.add_argument("--out-channels", type=int, help="output channels (default: read from the file)")
    p.add_argument("--no-dropout", action="store_true",
                   help="the U-Net was trained with --no_dropout (a U-Net file cannot say; default: dropout on)")
    p.add_argument("--discriminator-layers", type=int, help="PatchGAN n_layers_D (default: read from the file)")
    p.add_argument("--ndf", type=int, help="discriminator filters (default: read from the file)")
    p.add_argument("--quiet", action="store_true", help="print nothing but the notes")
    return parser


def one_line(exc: Pix2PixError) -> str:
    """The error as one line in the CLI's words (settings named by their flags): a multi-line
    problem (a pairing report) is folded with '; ' and shortened past 5 items (``pair`` prints
    the full report), then the fix."""
    from .messages import render

    return render(exc, FACE)


def _quiet_broken_pipe() -> int:
    """stdout was closed by the reader (``| head``): stop quietly, as Unix tools do."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.func is cmd_train:
            return cmd_train(args, args.command_parser, argv)
        return args.func(args, args.command_parser)
    except Pix2PixError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as exc:  # a file the engine did not wrap: still one line, with a fix
        from .paths import write_error

        print(f"error: {one_line(write_error(exc, exc.filename or '?', 'file', 'use'))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
