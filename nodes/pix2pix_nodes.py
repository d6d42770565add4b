"""The Pix2Pix nodes. Every option input is generated from the engine's one schema
(:mod:`napari_pix2pix.config` fields, read through :mod:`._schema`); all work is done by the
engine; errors are the engine's :class:`~napari_pix2pix.errors.Pix2PixError` subclasses,
rendered in the nodes' words (:mod:`._messages`), which ComfyUI shows as the node's error (the
server keeps running)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time

import numpy as np

from napari_pix2pix.config import AugmentConfig, DataConfig, ModelConfig, NormConfig, TileConfig, TrainConfig
from napari_pix2pix.errors import Cancelled, DatasetError, InputError, Pix2PixError, TrainingError

from . import _colorize as col
from . import _convert as cv
from . import _runtime as rt
from . import _schema as sc
from ._messages import node_errors

log = logging.getLogger("napari_pix2pix.nodes")

CATEGORY = "Pix2Pix"
MODEL = "PIX2PIX_MODEL"
DATASET = "PIX2PIX_DATASET"
# options that exist only in the nodes (no engine setting behind them)
IF_EXISTS_CHOICES = ("increment", "overwrite", "error")
GRAY_CHOICES = ("auto", "rgb", "gray")
PRESET_NONE, PRESET_AUTO = "none", "auto"
# node inputs that keep their older names (saved workflows use them): schema field -> input
TRANSLATE_RENAME = {"batch_size": "tile_batch"}
AUTO_DEVICE_TIP = " auto: ComfyUI's device (outside ComfyUI: cuda, then mps, then cpu)."


def _combo(choices, default, tooltip: str):
    return (list(choices), {"default": default, "tooltip": tooltip})


def _with_tip(spec: dict, name: str, extra: str) -> dict:
    """Append ``extra`` to the tooltip of input ``name`` (wherever it sits in ``spec``)."""
    for section in spec.values():
        if name in section:
            kind, opts = section[name]
            section[name] = (kind, {**opts, "tooltip": opts.get("tooltip", "") + extra})
    return spec


@contextlib.contextmanager
def _on_device(model, device):
    """Run ``model`` on ``device`` and put it back where it was (ComfyUI keeps models off the GPU
    between runs)."""
    before = model.device
    model.to(device)
    try:
        yield model
    finally:
        model.to(before)


def _model_side(arr, model, side: str, name: str, role: str):
    """IMAGE data ``[B, H, W, C]`` (numpy, 0..1) -> the model's data layout and units for side
    ``'a'`` or ``'b'`` (channel conversion, then the value mapping of that side)."""
    return cv.image_to_data(cv.to_channels(arr, cv.data_channels(model, side), name, role), model, side)


def _image_model(model) -> None:
    from napari_pix2pix.model import Pix2PixModel

    if not isinstance(model, Pix2PixModel):
        raise InputError(f"the model input is a {type(model).__name__}, not a Pix2Pix model.",
                         "connect the output of Load Pix2Pix Model or Train Pix2Pix.")


# ================================================================================= load
class Pix2PixLoadModel:
    DESCRIPTION = "Load a napari-pix2pix .safetensors model from the models/pix2pix folder."
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL, "STRING")
    RETURN_NAMES = ("model", "info")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model_name": (rt.list_models(), {"tooltip": "A .safetensors file in models/pix2pix."}),
        }}

    @classmethod
    def IS_CHANGED(cls, model_name):
        try:
            st = rt.model_path(model_name).stat()
            return f"{st.st_mtime_ns}:{st.st_size}"
        except Pix2PixError:
            return float("nan")

    @node_errors("Pix2PixLoadModel")
    def load(self, model_name):
        from napari_pix2pix.model import Pix2PixModel

        model = Pix2PixModel.load(rt.model_path(model_name), device="cpu")
        return (model, json.dumps(model.info(), indent=1, default=str))


# ================================================================================= save
class Pix2PixSaveModel:
    DESCRIPTION = ("Write a Pix2Pix model (with its training state, so it can be trained further) to "
                   "models/pix2pix as .safetensors. The name stays inside that folder.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL,),
            "name": ("STRING", {"default": "model", "tooltip": "Relative name inside models/pix2pix; "
                                "'.safetensors' is added."}),
            "if_exists": _combo(IF_EXISTS_CHOICES, "increment",
                                "increment: add _00001, _00002 ...; overwrite; or error."),
        }}

    @node_errors("Pix2PixSaveModel")
    def save(self, model, name, if_exists="increment"):
        _image_model(model)
        if if_exists not in IF_EXISTS_CHOICES:
            raise InputError(f"if_exists={if_exists!r} is not one of {', '.join(IF_EXISTS_CHOICES)}.",
                             "choose increment, overwrite or error.")
        path = rt.save_path(name, if_exists)
        written = model.save(path)
        log.info("pix2pix: saved %s", written)
        return {"ui": {"text": [str(written)]}, "result": (str(written),)}


# ================================================================================= pair
def _describe(dataset) -> str:
    d = dataset.describe()
    lines = [f"{d['pairs']} pair(s), {d['in_channels']} -> {d['out_channels']} channel(s), {d['pixels']} pixels"]
    for side in ("a", "b"):
        s = d[side]
        norm = s["normalization"]
        lines.append(f"{side.upper()}: {s['dtype']} {s['channels']} ch, shapes {s['shapes']}, "
                     f"{'labels' if s['is_labels'] else norm['mode']} ({norm['low']:.4g}..{norm['high']:.4g})")
    return "\n".join(lines)


def _pick_channels(arr: np.ndarray, choice: str, name: str) -> np.ndarray:
    if choice not in GRAY_CHOICES:
        raise InputError(f"channels={choice!r} is not one of {', '.join(GRAY_CHOICES)}.", "choose auto, rgb or gray.")
    if choice == "gray" or (choice == "auto" and cv.is_gray(arr)):
        return cv.to_gray(arr)
    return cv.to_channels(arr, 3, name, "rgb")


class Pix2PixPairImages:
    DESCRIPTION = ("Pair two IMAGE batches frame by frame (A[i] -> B[i]) into a training set. Values 0..1 "
                   "map to the model's [-1, 1] exactly. Mismatches fail with a list naming each frame.")
    CATEGORY = CATEGORY
    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((DataConfig, {}),)
    RETURN_TYPES = (DATASET, "STRING")
    RETURN_NAMES = ("dataset", "report")
    FUNCTION = "pair"

    @classmethod
    def INPUT_TYPES(cls):
        tip = "auto: gray when R == G == B in every frame, else RGB."
        return sc.merge({
            "required": {
                "images_a": ("IMAGE", {"tooltip": "Inputs (A)."}),
                "channels_a": _combo(GRAY_CHOICES, "auto", tip),
                "channels_b": _combo(GRAY_CHOICES, "auto", tip),
            },
            "optional": {
                "images_b": ("IMAGE", {"tooltip": "Targets (B), same count and size as A."}),
                "mask_b": ("MASK", {"tooltip": "A 1-channel target (e.g. a segmentation) instead of images_b."}),
            },
        }, sc.inputs(DataConfig, ["task"], section="optional"))  # issue 18: colorize needs no images_b

    @node_errors("Pix2PixPairImages")
    def pair(self, images_a, channels_a="auto", channels_b="auto", images_b=None, mask_b=None, task="translate"):
        from napari_pix2pix.data.sources import from_arrays

        if task == "colorize":  # L -> ab pairs from colour frames; no target
            dataset = col.colorize_pairs(images_a)
            return (dataset, _describe(dataset))

        a = _pick_channels(cv.image_to_numpy(images_a, "images_a"), channels_a, "images_a")
        if images_b is None and mask_b is None:
            raise DatasetError("Pair Images has inputs (A) but no targets (B).",
                               "connect an IMAGE batch to images_b, or a MASK batch to mask_b.")
        if images_b is not None and mask_b is not None:
            raise DatasetError("both images_b and mask_b are connected; the target is ambiguous.",
                               "connect only one of them.")
        if mask_b is not None:
            b = cv.mask_to_numpy(mask_b, "mask_b")[..., None]
        else:
            b = _pick_channels(cv.image_to_numpy(images_b, "images_b"), channels_b, "images_b")
        width = max(3, len(str(max(len(a), len(b)) - 1)))
        names = [f"frame_{i:0{width}d}" for i in range(len(a))]

        def frames(x):
            return [x[i, ..., 0] if x.shape[-1] == 1 else x[i] for i in range(len(x))]

        fixed = NormConfig(mode="fixed", low=0.0, high=1.0)
        config = DataConfig(norm_a=fixed, norm_b=fixed, a_is_labels=False, b_is_labels=False)
        dataset = from_arrays(frames(a), frames(b), config, rgb_a=a.shape[-1] > 1, rgb_b=b.shape[-1] > 1,
                              names=names)
        dataset.source["face"] = "comfyui"
        return (dataset, _describe(dataset))


class Pix2PixPairFolders:
    DESCRIPTION = ("Pair two folders of images by file name (tif/png/jpg/npy). Inside ComfyUI the folders "
                   "are relative to (and must stay inside) ComfyUI's input folder. Mismatches fail with "
                   "a list naming each file.")
    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((NormConfig, {"mode": "normalization_a"}), (NormConfig, {"mode": "normalization_b"}))
    CATEGORY = CATEGORY
    RETURN_TYPES = (DATASET, "STRING")
    RETURN_NAMES = ("dataset", "report")
    FUNCTION = "pair"

    @classmethod
    def INPUT_TYPES(cls):
        return sc.merge(
            {"required": {
                "folder_a": ("STRING", {"default": "pix2pix/A", "tooltip": "Input images (A)."}),
                "folder_b": ("STRING", {"default": "pix2pix/B", "tooltip": "Target images (B), same names."}),
            }},
            sc.inputs(NormConfig, ["mode"], rename={"mode": "normalization_a"}, section="required"),
            sc.inputs(NormConfig, ["mode"], rename={"mode": "normalization_b"}, section="required"))

    @node_errors("Pix2PixPairFolders", {"mode": "normalization_a / normalization_b"})
    def pair(self, folder_a, folder_b, normalization_a=None, normalization_b=None):
        from napari_pix2pix.data.sources import from_folders

        dir_a, dir_b = rt.data_folder(folder_a, "A"), rt.data_folder(folder_b, "B")
        config = DataConfig(norm_a=NormConfig(**sc.values(NormConfig, {"mode": normalization_a}, ["mode"])),
                            norm_b=NormConfig(**sc.values(NormConfig, {"mode": normalization_b}, ["mode"])))
        dataset = from_folders(dir_a, dir_b, config)
        return (dataset, _describe(dataset))


# ================================================================================ train
def _refreshed_checkpoint(model):
    """The model's checkpoint with the weights its modules hold now, every tensor a CPU copy
    (training from it must not change the input model)."""
    ckpt = model.checkpoint
    gen = {k: v.detach().cpu().clone() for k, v in model.generator.state_dict().items()}
    disc = ckpt.discriminator
    if model.discriminator is not None:
        disc = {k: v.detach().cpu().clone() for k, v in model.discriminator.state_dict().items()}
    return _cpu_copy(dataclasses.replace(ckpt, generator=gen, discriminator=disc))


def _cpu_copy(value, copy: bool = True):
    """Tensors (in dicts, lists, dataclasses) on the CPU: copies, or (``copy=False``) moved only
    where they are on another device (a finished trainer's CPU tensors need no second copy)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=copy)
    if isinstance(value, dict):
        return {k: _cpu_copy(v, copy) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v, copy) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "generator"):
        return dataclasses.replace(value, **{f.name: _cpu_copy(getattr(value, f.name), copy)
                                             for f in dataclasses.fields(value)
                                             if f.name in ("generator", "discriminator", "optimizer_g",
                                                           "optimizer_d", "rng", "history")})
    return value


def _presets():
    """The engine's presets module, or None before it exists."""
    try:
        from napari_pix2pix import presets
    except ImportError:
        return None
    return presets if hasattr(presets, "PRESETS") else None


def preset_choices() -> list[str]:
    presets = _presets()
    if presets is None:
        return [PRESET_NONE]
    return [PRESET_AUTO, PRESET_NONE, *presets.PRESETS]


def _preset_tooltip() -> str:
    presets = _presets()
    text = "Named settings that override the inputs below. none: use the inputs as they are."
    if presets is None:
        return text
    text += " auto: the preset for the training device."
    for name, preset in presets.PRESETS.items():
        text += f" {name}: {getattr(preset, 'help', '')}".rstrip() + ("" if str(getattr(preset, "help", "")).endswith(".") else ".")
    return text


def resolve_preset(name: str, device) -> tuple[str | None, dict]:
    """(preset name or None, its overrides) for the preset input ``name`` on ``device``."""
    presets = _presets()
    if not name or name == PRESET_NONE or presets is None:
        if name not in (None, "", PRESET_NONE):
            raise InputError(f"preset {name!r} is not available in this version.", "choose preset none.")
        return None, {}
    if name == PRESET_AUTO:
        chosen = presets.default_preset(str(device))
        name = chosen if isinstance(chosen, str) else next(
            (k for k, v in presets.PRESETS.items() if v is chosen), getattr(chosen, "name", None))
    if name not in presets.PRESETS:
        raise InputError(f"preset {name!r} is unknown.", f"choose one of: {', '.join(preset_choices())}.")
    return name, dict(getattr(presets.PRESETS[name], "overrides", {}) or {})


def _apply_preset(name: str, overrides: dict, kw: dict, *, auto: bool, device) -> str:
    """Put the preset's values into the node's settings ``kw`` (groups model/train/augment/data)
    where an input still holds the schema default: an input the user changed wins, as a flag
    given on the CLI does. Returns the report line."""
    set_, kept = [], []
    homes = (("model", ModelConfig), ("train", TrainConfig), ("augment", AugmentConfig))
    for key, value in overrides.items():
        for group, cls in homes:
            if key in kw[group] or key in {f.name for f in dataclasses.fields(cls)}:
                break
        else:
            continue
        if key not in kw[group]:  # a setting the nodes do not show (beta1, unet_skips)
            kw[group][key] = value
        elif kw[group][key] == sc.default(cls, key):
            if value != kw[group][key]:
                set_.append(f"{key} {value}")
            kw[group][key] = value
        elif kw[group][key] != value:
            kept.append(f"{key} {kw[group][key]}")
    line = f"preset {name}" + (f" (auto for {device.type})" if auto else "")
    line += f": {', '.join(set_)}" if set_ else ": no change"
    if kept:
        line += f"; kept your {', '.join(kept)}"
    return line + "."


def _duration(seconds: float) -> str:
    presets = _presets()
    if presets is not None and hasattr(presets, "format_duration"):
        return presets.format_duration(seconds)
    return f"{max(0.0, float(seconds)):.0f} s"


def _crop_warning(dataset, crop: int) -> str | None:
    """A line for the report when ``crop`` is larger than a training image (it is then padded)."""
    shapes = [tuple(p.shape) for p in getattr(dataset, "pairs", [])]
    if not shapes:
        return None
    small = min(shapes, key=lambda hw: min(hw))
    side = min(small)
    if crop <= side:
        return None
    return (f"warning: crop {crop} is larger than the smallest training image ({small[1]}x{small[0]} px), "
            f"so its patches are padded; set crop to at most {side} (a multiple of the generator's size "
            "multiple) to train on image content only.")


def _save_model(ckpt, path, save_optimizer: bool):
    """Write checkpoint ``ckpt`` to ``path``: weights, configs, step and history; the optimizer
    state only with ``save_optimizer`` (it triples the file and the time to write it)."""
    from napari_pix2pix.training.saving import save_finite as save_checkpoint  # refuses non-finite weights

    if not save_optimizer:
        ckpt = dataclasses.replace(ckpt, optimizer_g=None, optimizer_d=None)
    return save_checkpoint(path, ckpt)


class _LastInterrupted:
    """``Pix2PixTrain.last_interrupted``: the model of the last cancelled run, built from its
    checkpoint when first read (building the networks would add to the time a cancel takes)."""

    def __get__(self, obj, owner):
        ckpt = owner.__dict__.get("_interrupted_checkpoint")
        if ckpt is None:
            return None
        if owner.__dict__.get("_interrupted_model") is None:
            from napari_pix2pix.model import Pix2PixModel

            owner._interrupted_model = Pix2PixModel.from_checkpoint(ckpt, device="cpu")
        return owner._interrupted_model


MODEL_FIELDS = None  # every ModelConfig option of the nodes face
TRAIN_FIELDS = None  # every TrainConfig option of the nodes face
AUGMENT_FIELDS = None  # every AugmentConfig option of the nodes face
DATA_FIELDS = ("validation_fraction",)  # the other DataConfig options belong to pairing


class Pix2PixTrain:
    DESCRIPTION = ("Train Pix2Pix on a paired dataset, or continue training a model (its weights, optimizer "
                   "state and step; the total grows by 'steps'). A preset sets the inputs it names (shown in "
                   "the report with the estimated duration). Cancel stops within one step and keeps the model "
                   "trained so far in the autosave file, whose path the node shows.")
    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((ModelConfig, {}), (TrainConfig, {}), (AugmentConfig, {}), (DataConfig, {}))
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL, "IMAGE", "STRING")
    RETURN_NAMES = ("model", "loss_curve", "report")
    FUNCTION = "train"

    #: the model of the last cancelled run in this process (also written to the autosave file)
    last_interrupted = _LastInterrupted()
    _interrupted_checkpoint = _interrupted_model = None

    @classmethod
    def INPUT_TYPES(cls):
        choices = preset_choices()
        spec = sc.merge(
            {"required": {"dataset": (DATASET,),
                          "preset": _combo(choices, choices[0], _preset_tooltip())}},
            sc.inputs(ModelConfig, MODEL_FIELDS),
            sc.inputs(TrainConfig, TRAIN_FIELDS),
            sc.inputs(AugmentConfig, AUGMENT_FIELDS),
            sc.inputs(DataConfig, DATA_FIELDS),
            {"optional": {
                "model": (MODEL, {"tooltip": "Continue training this model; its architecture is used."}),
                "autosave": ("STRING", {"default": "autosave", "tooltip": "Model name (in models/pix2pix) "
                                        "written at the end, every 'checkpoint_every' steps, on cancel and on a "
                                        "failure; empty: only on cancel, as 'interrupted'."}),
                "save_optimizer": ("BOOLEAN", {"default": False, "tooltip": "Also write the optimizer state to "
                                               "the autosave file (about 3x larger and slower to write; only "
                                               "needed to continue training from the file exactly). The "
                                               "model output always keeps it."}),
            }},
            {"hidden": {"unique_id": "UNIQUE_ID"}},
        )
        spec = _with_tip(spec, "steps", " Steps run by this node (added to a continued model's).")
        return _with_tip(spec, "device", AUTO_DEVICE_TIP)

    @node_errors("Pix2PixTrain")
    def train(self, dataset, preset=PRESET_NONE, model=None, autosave="autosave", save_optimizer=False,
              unique_id=None, **settings):
        import torch

        from napari_pix2pix.rng import preserved_rng

        if dataset is None or not hasattr(dataset, "pairs"):
            raise DatasetError(f"the dataset input is a {type(dataset).__name__}, not a paired dataset.",
                               "connect the output of Pair Images or Pair Folders.")
        if model is not None:
            _image_model(model)
        kw = {"model": sc.values(ModelConfig, settings, MODEL_FIELDS),
              "train": sc.values(TrainConfig, settings, TRAIN_FIELDS),
              "augment": sc.values(AugmentConfig, settings, AUGMENT_FIELDS),
              "data": sc.values(DataConfig, settings, DATA_FIELDS)}
        device = rt.torch_device(kw["train"]["device"])
        notes = []
        name, overrides = resolve_preset(preset, device)
        if name is not None:
            notes.append(_apply_preset(name, overrides, kw, auto=preset == PRESET_AUTO, device=device))
        kw["train"]["device"] = rt.engine_device_name(device)
        autosave_path = rt.save_path(autosave, "overwrite") if str(autosave or "").strip() else None
        # ComfyUI runs nodes under torch.inference_mode(); training needs autograd. The caller's
        # random state (other nodes of the graph) is put back afterwards.
        with preserved_rng(), torch.inference_mode(False), torch.enable_grad():
            return self._train(dataset, model, autosave_path, bool(save_optimizer), kw, notes, unique_id)

    def _train(self, dataset, model, autosave_path, save_optimizer, kw, notes, node_id):
        from napari_pix2pix.model import Pix2PixModel
        from napari_pix2pix.metrics import CollapseGuard
        from napari_pix2pix.training import FinishedEvent, StepEvent, ThreadsEvent, Trainer, ValidationEvent
        from napari_pix2pix.training.saving import snapshot

        collapse = CollapseGuard()

        tk = kw["train"]
        steps = int(tk.pop("steps"))
        fraction = float(kw["data"]["validation_fraction"])
        train_set, val_set = dataset.holdout(fraction)
        start = int(model.step) if model is not None else 0
        total = start + steps
        decay = tk.pop("decay_steps")
        every_save = int(tk.pop("checkpoint_every") or 0)
        validate = int(tk.pop("validate_every") or 0)
        if val_set is not None and validate == 0:
            validate = total  # "0: at the end only"
        config = TrainConfig(steps=total, decay_steps=None if decay is None else min(int(decay), total),
                             preview_every=0, log_every=max(1, steps // 500), validate_every=validate,
                             checkpoint_every=0, augment=AugmentConfig(**kw["augment"]), **tk)
        warning = _crop_warning(train_set, config.crop)
        if warning:
            notes.append(warning)
            rt.show_text(node_id, warning)
        arch = ModelConfig(in_channels=dataset.in_channels, out_channels=dataset.out_channels, **kw["model"])
        resume = _refreshed_checkpoint(model) if model is not None else None  # in memory, no file
        rt.throw_if_interrupted()  # a Cancel while the graph ran up to here: nothing trained, nothing to save
        trainer = Trainer(arch, config, train_set, val_dataset=val_set, out=None, resume=resume)
        bar = rt.progress_bar(steps)
        interrupt: BaseException | None = None
        finished, failure, estimate = None, None, None
        times: list[float] = []
        began = time.perf_counter()

        def checkpoint(final: bool = False, optimizer: bool = True):
            # the live CPU tensors, not copies: every save below happens before the next step or
            # after the last one (the model the user gets: the best validated one with select_best)
            return snapshot(trainer, optimizer=optimizer, final=final)

        def cancelled() -> BaseException | None:
            try:
                rt.throw_if_interrupted()
            except rt.interrupt_types() as exc:
                return exc
            return None

        if (interrupt := cancelled()) is not None:  # pressed while the networks were built
            message = "training was cancelled before its first step; nothing was trained or saved."
            rt.show_text(node_id, message)
            raise rt.interrupt_exception(message) or Cancelled(message, "run the node again.")
        try:
            for event in trainer.events():
                if interrupt is None and not isinstance(event, (StepEvent, FinishedEvent)) and (interrupt := cancelled()):
                    trainer.stop()  # e.g. pressed during a validation: the stream ends now
                if isinstance(event, StepEvent) and interrupt is None:
                    times.append(float(event.seconds))
                    if estimate is None and (len(times) == min(4, steps) or time.perf_counter() - began > 30):
                        timed = times[1:] or times  # the first step pays for warm-up
                        estimate = sum(timed) / len(timed) * (steps - len(times)) + (time.perf_counter() - began)
                        line = (f"estimated duration: about {_duration(estimate)} for {steps} steps "
                                f"(timed on the first {len(times)}).")
                        notes.append(line)
                        rt.show_text(node_id, line)
                        log.info("pix2pix: %s", line)
                    if every_save and autosave_path is not None and event.step % every_save == 0 \
                            and event.step < total:
                        _save_model(checkpoint(optimizer=save_optimizer), autosave_path, save_optimizer)
                    try:
                        bar.update(1)  # inside ComfyUI this raises its interrupt exception on Cancel
                        rt.throw_if_interrupted()
                    except rt.interrupt_types() as exc:
                        interrupt = exc
                        trainer.stop()  # the stream ends after this step
                elif isinstance(event, ValidationEvent):
                    shown = ", ".join(f"{k} {v:.4g}" for k, v in event.metrics.items() if isinstance(v, (int, float)))
                    notes.append(f"validation at step {event.step}: {shown}")
                    first = collapse.message is None
                    flat = collapse(event)  # issue 20: said once per run, in the node's report
                    if flat and first:
                        notes.append(f"warning: {flat}")
                        rt.show_text(node_id, flat)
                elif isinstance(event, ThreadsEvent):  # threads=auto followed the load
                    notes.append(f"step {event.step}: {event.line}")
                    rt.show_text(node_id, event.line)
                    log.info("pix2pix: %s", event.line)
                elif isinstance(event, FinishedEvent):
                    finished = event
        except KeyboardInterrupt as exc:  # Ctrl-C outside ComfyUI while a step ran
            interrupt = exc
            trainer.stop()
        except TrainingError as exc:
            failure = exc
        ckpt = checkpoint(final=interrupt is None and failure is None)
        if finished is not None:
            ckpt.history = list(finished.history)
        step = trainer.step
        del trainer
        rt.soft_empty_cache()
        if failure is not None:
            if autosave_path is not None:
                kept = _save_model(ckpt, autosave_path, save_optimizer)
                failure.fix = f"{(failure.fix or '').rstrip()} The last good model was saved to {kept}."
            raise failure
        if interrupt is not None:  # save first: the in-memory model is only a convenience
            kept = _save_model(ckpt, autosave_path or rt.save_path("interrupted", "overwrite"), save_optimizer)
            Pix2PixTrain._interrupted_checkpoint, Pix2PixTrain._interrupted_model = ckpt, None
            message = (f"training was cancelled at step {step}; the model trained so far was saved to {kept} "
                       "(load it with Load Pix2Pix Model to continue).")
            log.warning("pix2pix: %s", message)
            rt.show_text(node_id, "\n".join(notes + [message]))
            comfy_exc = rt.interrupt_exception(message)
            if comfy_exc is not None:
                raise comfy_exc
            raise Cancelled(message, "load the saved model and connect it to Train Pix2Pix to continue.")
        lines = [f"trained {steps} step(s) in {_duration(time.perf_counter() - began)} (model step {step})."]
        result = Pix2PixModel.from_checkpoint(ckpt, device="cpu")
        if autosave_path is not None:
            kept = _save_model(ckpt, autosave_path, save_optimizer)
            lines.append(f"saved to {kept}" + (" (with the optimizer state)." if save_optimizer else "."))
        try:
            curve = cv.loss_curve(ckpt.history)[None]
        except ImportError as exc:  # the model is trained: keep it, say why the curve is blank
            curve = np.ones((1, *cv.CURVE_SIZE, 3), np.float32)
            lines.append(f"the loss curve was not drawn ({exc}). Fix: pip install matplotlib "
                         "(or the package's [nodes] extra) and restart ComfyUI.")
        report = "\n".join(notes + lines)
        rt.show_text(node_id, report)  # on the node itself (ui text shows where the frontend draws it)
        return {"ui": {"text": [report]}, "result": (result, cv.to_tensor(curve), report)}


# ============================================================================ translate
class Pix2PixTranslate:
    DESCRIPTION = ("Translate an IMAGE batch of any size with a Pix2Pix model, in overlapping tiles. A 1-channel "
                   "model gets the image's luminance; a 1-channel result comes out as gray RGB (and as MASK).")
    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((TileConfig, TRANSLATE_RENAME),)
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", "MASK", "MASK")  # issue 18: + uncertainty (samples > 1), realism
    RETURN_NAMES = ("image", "mask", "uncertainty", "realism")
    FUNCTION = "translate"

    @classmethod
    def INPUT_TYPES(cls):
        spec = sc.merge({"required": {"model": (MODEL,), "image": ("IMAGE",)}},
                        sc.inputs(TileConfig, rename=TRANSLATE_RENAME))
        return _with_tip(spec, "device", AUTO_DEVICE_TIP)

    @node_errors("Pix2PixTranslate", TRANSLATE_RENAME)
    def translate(self, model, image, **settings):
        from napari_pix2pix.predict import clamp_tiling

        _image_model(model)
        values = sc.values(TileConfig, settings, rename=TRANSLATE_RENAME)
        device = values.pop("device")
        values["tile"], values["overlap"] = clamp_tiling(values["tile"], values["overlap"])  # the one rule
        config = TileConfig(**values)
        bar = rt.progress_bar(1)

        def progress(done, total):
            bar.update_absolute(done, total)

        try:
            with _on_device(model, rt.torch_device(device)):
                outputs = col.translate_outputs(model, image, config, realism=bool(config.realism),
                                                progress=progress, cancel=rt.processing_interrupted)
        except Cancelled:
            rt.throw_if_interrupted()
            raise
        return tuple(cv.to_tensor(o) for o in outputs)


# ===================================================================== discriminator map
class Pix2PixDiscriminatorMap:
    DESCRIPTION = ("The PatchGAN's verdict on (input, candidate) as a heatmap aligned to the input: bright = "
                   "judged real. Candidate: a target or a generated image; empty = the model's own translation.")
    #: the engine settings behind the inputs: (config class, schema name -> input name)
    SCHEMA = ((TileConfig, {}),)
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("heatmap", "realness")
    FUNCTION = "judge"

    @classmethod
    def INPUT_TYPES(cls):
        spec = sc.merge(
            {"required": {
                "model": (MODEL,),
                "image": ("IMAGE", {"tooltip": "The input (A) image(s)."}),
                "colormap": _combo(cv.COLORMAPS, cv.COLORMAPS[0], "Colours for realness 0 (fake) .. 1 (real)."),
                "overlay": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                      "tooltip": "Blend the input image under the heatmap (0: heatmap only)."}),
            }},
            {"optional": {"candidate": ("IMAGE", {"tooltip": "Target or generated image(s) to judge, same size "
                                                  "as the input."})}},
            sc.inputs(TileConfig, ["mode", "device"], section="optional"))
        spec = _with_tip(spec, "mode", " Used when no candidate is given.")
        return _with_tip(spec, "device", AUTO_DEVICE_TIP)

    @node_errors("Pix2PixDiscriminatorMap")
    def judge(self, model, image, colormap=cv.COLORMAPS[0], overlay=0.0, candidate=None, **settings):
        from napari_pix2pix.discriminator_map import discriminator_maps

        _image_model(model)
        values = sc.values(TileConfig, settings, ["mode", "device"])
        mode, device = values["mode"], values["device"]
        if colormap not in cv.COLORMAPS and colormap not in cv._RENAMED:
            raise InputError(f"colormap={colormap!r} is not one of {', '.join(cv.COLORMAPS)}.", "choose one of them.")
        src = cv.image_to_numpy(image, "image")
        x = _model_side(src, model, "a", "the image", "the model")
        y = None
        if candidate is not None:
            cand = cv.image_to_numpy(candidate, "candidate")
            if len(cand) not in (1, len(src)):
                raise InputError(f"the candidate batch has {len(cand)} image(s) but the input has {len(src)}.",
                                 "feed one candidate per input image (or a single one for all).")
            if cand.shape[1:3] != src.shape[1:3]:
                raise InputError(f"the candidate is {cand.shape[2]}x{cand.shape[1]} but the input is "
                                 f"{src.shape[2]}x{src.shape[1]} pixels.", "feed a candidate of the input's size.")
            y = _model_side(cand, model, "b", "the candidate", "the model's output")
        bar = rt.progress_bar(len(x))
        maps = []
        with _on_device(model, rt.torch_device(device)):
            for i in range(len(x)):
                rt.throw_if_interrupted()
                target = None if y is None else y[i if len(y) > 1 else 0]
                real, fake = discriminator_maps(model, x[i], target, channel_axis_source=-1,
                                                channel_axis_target=-1, mode=mode)
                maps.append((real if target is not None else fake).upsampled())
                bar.update(1)
        realness = np.clip(np.stack(maps).astype(np.float32), 0.0, 1.0)
        heat = cv.colormap(realness, colormap)
        if overlay > 0:
            base = src[..., :3] if src.shape[-1] >= 3 else np.repeat(src[..., :1], 3, axis=-1)
            heat = (1 - overlay) * heat + overlay * np.clip(base, 0, 1)
        return (cv.to_tensor(np.clip(heat, 0, 1)), cv.to_tensor(realness))


# ================================================================================= info
class Pix2PixModelInfo:
    DESCRIPTION = "Architecture, receptive field, steps and training settings of a model, as JSON text."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("info",)
    FUNCTION = "info"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": (MODEL,)}}

    @node_errors("Pix2PixModelInfo")
    def info(self, model):
        _image_model(model)
        text = json.dumps(model.info(), indent=1, default=str)
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {
    "Pix2PixLoadModel": Pix2PixLoadModel,
    "Pix2PixSaveModel": Pix2PixSaveModel,
    "Pix2PixPairImages": Pix2PixPairImages,
    "Pix2PixPairFolders": Pix2PixPairFolders,
    "Pix2PixTrain": Pix2PixTrain,
    "Pix2PixTranslate": Pix2PixTranslate,
    "Pix2PixDiscriminatorMap": Pix2PixDiscriminatorMap,
    "Pix2PixModelInfo": Pix2PixModelInfo,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "Pix2PixLoadModel": "Load Pix2Pix Model",
    "Pix2PixSaveModel": "Save Pix2Pix Model",
    "Pix2PixPairImages": "Pair Images (Pix2Pix)",
    "Pix2PixPairFolders": "Pair Folders (Pix2Pix)",
    "Pix2PixTrain": "Train Pix2Pix",
    "Pix2PixTranslate": "Translate (Pix2Pix)",
    "Pix2PixDiscriminatorMap": "Discriminator Map (Pix2Pix)",
    "Pix2PixModelInfo": "Pix2Pix Model Info",
}
