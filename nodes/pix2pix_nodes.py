"""The Pix2Pix nodes. Choices and defaults come from :mod:`napari_pix2pix.config`; all work is
done by the engine; errors are the engine's :class:`~napari_pix2pix.errors.Pix2PixError`
subclasses, which ComfyUI shows as the node's error (the server keeps running)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile

import numpy as np

from napari_pix2pix.config import (
    AugmentConfig,
    DataConfig,
    DEVICE_CHOICES,
    DISCRIMINATOR_CHOICES,
    GAN_MODE_CHOICES,
    GENERATOR_CHOICES,
    ModelConfig,
    NORM_CHOICES,
    NORM_MODE_CHOICES,
    NormConfig,
    PRECISION_CHOICES,
    TEST_MODE_CHOICES,
    TileConfig,
    TrainConfig,
)
from napari_pix2pix.errors import Cancelled, DatasetError, InputError, Pix2PixError

from . import _colorize as col
from . import _convert as cv
from . import _runtime as rt

log = logging.getLogger("napari_pix2pix.nodes")

CATEGORY = "Pix2Pix"
MODEL = "PIX2PIX_MODEL"
DATASET = "PIX2PIX_DATASET"
IF_EXISTS_CHOICES = ("increment", "overwrite", "error")
GRAY_CHOICES = ("auto", "rgb", "gray")
MAX_INT = 2**31 - 1

_M, _T, _TILE, _AUG, _NORM = ModelConfig(), TrainConfig(), TileConfig(), AugmentConfig(), NormConfig()


def _combo(choices, default, tooltip: str):
    return (list(choices), {"default": default, "tooltip": tooltip})


def _int(default, lo, hi, tooltip: str):
    return ("INT", {"default": int(default), "min": lo, "max": hi, "tooltip": tooltip})


def _float(default, lo, hi, step, tooltip: str):
    return ("FLOAT", {"default": float(default), "min": lo, "max": hi, "step": step, "tooltip": tooltip})


def _device_input(tooltip: str = "auto: ComfyUI's device (cuda, mps or cpu outside ComfyUI)."):
    return _combo(DEVICE_CHOICES, "auto", tooltip)


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
    RETURN_TYPES = (DATASET, "STRING")
    RETURN_NAMES = ("dataset", "report")
    FUNCTION = "pair"

    @classmethod
    def INPUT_TYPES(cls):
        tip = "auto: gray when R == G == B in every frame, else RGB."
        return {
            "required": {
                "images_a": ("IMAGE", {"tooltip": "Inputs (A)."}),
                "channels_a": _combo(GRAY_CHOICES, "auto", tip),
                "channels_b": _combo(GRAY_CHOICES, "auto", tip),
            },
            "optional": {
                "images_b": ("IMAGE", {"tooltip": "Targets (B), same count and size as A."}),
                "mask_b": ("MASK", {"tooltip": "A 1-channel target (e.g. a segmentation) instead of images_b."}),
                "task": col.task_input(),  # issue 18
            },
        }

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
    CATEGORY = CATEGORY
    RETURN_TYPES = (DATASET, "STRING")
    RETURN_NAMES = ("dataset", "report")
    FUNCTION = "pair"

    @classmethod
    def INPUT_TYPES(cls):
        norm_tip = ("How data values map to [-1, 1]: percentile (1..99.8 %), fixed, none (dtype range, e.g. "
                    "0..255), labels.")
        return {"required": {
            "folder_a": ("STRING", {"default": "pix2pix/A", "tooltip": "Input images (A)."}),
            "folder_b": ("STRING", {"default": "pix2pix/B", "tooltip": "Target images (B), same names."}),
            "normalization_a": _combo(NORM_MODE_CHOICES, _NORM.mode, norm_tip),
            "normalization_b": _combo(NORM_MODE_CHOICES, _NORM.mode, norm_tip),
        }}

    def pair(self, folder_a, folder_b, normalization_a=_NORM.mode, normalization_b=_NORM.mode):
        from napari_pix2pix.data.sources import from_folders

        dir_a, dir_b = rt.data_folder(folder_a, "A"), rt.data_folder(folder_b, "B")
        config = DataConfig(norm_a=NormConfig(mode=normalization_a), norm_b=NormConfig(mode=normalization_b))
        dataset = from_folders(dir_a, dir_b, config)
        return (dataset, _describe(dataset))


# ================================================================================ train
def _refreshed_checkpoint(model):
    """The model's checkpoint with the weights its modules hold now."""
    ckpt = model.checkpoint
    gen = {k: v.detach().cpu().clone() for k, v in model.generator.state_dict().items()}
    disc = ckpt.discriminator
    if model.discriminator is not None:
        disc = {k: v.detach().cpu().clone() for k, v in model.discriminator.state_dict().items()}
    return dataclasses.replace(ckpt, generator=gen, discriminator=disc)


def _cpu_copy(value):
    """Tensors (in dicts, lists, dataclasses) copied to the CPU: a trainer's checkpoint holds live
    references to its device tensors."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "generator"):
        return dataclasses.replace(value, **{f.name: _cpu_copy(getattr(value, f.name))
                                             for f in dataclasses.fields(value)
                                             if f.name in ("generator", "discriminator", "optimizer_g",
                                                           "optimizer_d", "rng", "history")})
    return value


class Pix2PixTrain:
    DESCRIPTION = ("Train Pix2Pix on a paired dataset, or continue training a model (its weights, optimizer "
                   "state and step; the total grows by 'steps'). Cancel stops within one step and keeps the "
                   "model trained so far in the autosave file.")
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL, "IMAGE")
    RETURN_NAMES = ("model", "loss_curve")
    FUNCTION = "train"

    #: the model of the last cancelled run in this process (also written to the autosave file)
    last_interrupted = None

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset": (DATASET,),
                "steps": _int(_T.steps, 1, 10_000_000, "Training steps to run (added to a continued model's)."),
                "generator": _combo(GENERATOR_CHOICES, _M.generator, "U-Net (unet_N: N = 2**levels) or ResNet."),
                "ngf": _int(_M.ngf, 1, 1024, "Generator filters in the first layer."),
                "ndf": _int(_M.ndf, 1, 1024, "Discriminator filters in the first layer."),
                "norm": _combo(NORM_CHOICES, _M.norm, "Normalisation layers."),
                "dropout": ("BOOLEAN", {"default": _M.dropout, "tooltip": "Dropout in the generator (the paper's noise)."}),
                "discriminator": _combo(DISCRIMINATOR_CHOICES, _M.discriminator, "patch (PatchGAN), pixel or image."),
                "discriminator_layers": _int(_M.discriminator_layers, 1, 5, "PatchGAN layers: 1=16, 2=34, 3=70, 4=142, 5=286 px."),
                "crop": _int(_T.crop, 8, 4096, "Training patch size (a multiple of the generator's size multiple)."),
                "batch_size": _int(_T.batch_size, 1, 1024, "Patches per step."),
                "lr": _float(_T.lr, 1e-7, 1.0, 1e-5, "Adam learning rate."),
                "lambda_l1": _float(_T.lambda_l1, 0.0, 10000.0, 1.0, "Weight of the L1 term."),
                "gan_mode": _combo(GAN_MODE_CHOICES, _T.gan_mode, "Adversarial loss."),
                "seed": _int(_T.seed, 0, MAX_INT, "Random seed."),
                "device": _device_input(),
                "precision": _combo(PRECISION_CHOICES, _T.precision, "fp32, bf16 or fp16 (CUDA) autocast."),
            },
            "optional": {
                "model": (MODEL, {"tooltip": "Continue training this model; its architecture is used."}),
                "jitter": ("BOOLEAN", {"default": _AUG.jitter, "tooltip": "Random resize and crop (286/256)."}),
                "flip": ("BOOLEAN", {"default": _AUG.flip, "tooltip": "Random mirroring."}),
                "decay_steps": _int(-1, -1, 10_000_000, "Steps of linear learning-rate decay at the end; -1: half (the paper's)."),
                "validation_fraction": _float(0.0, 0.0, 0.9, 0.05, "Held-out fraction of pairs (or bottom rows of one pair)."),
                "autosave": ("STRING", {"default": "autosave", "tooltip": "Model name (in models/pix2pix) "
                                        "written at the end, on cancel and on a failure; empty: only on cancel, as "
                                        "interrupted."}),
            },
        }

    def train(self, dataset, steps, generator, ngf, ndf, norm, dropout, discriminator, discriminator_layers,
              crop, batch_size, lr, lambda_l1, gan_mode, seed, device, precision, model=None, jitter=_AUG.jitter,
              flip=_AUG.flip, decay_steps=-1, validation_fraction=0.0, autosave="autosave"):
        import torch

        if dataset is None or not hasattr(dataset, "pairs"):
            raise DatasetError(f"the dataset input is a {type(dataset).__name__}, not a paired dataset.",
                               "connect the output of Pair Images or Pair Folders.")
        if model is not None:
            _image_model(model)
        autosave_path = rt.save_path(autosave, "overwrite") if str(autosave or "").strip() else None
        # ComfyUI runs nodes under torch.inference_mode(); training needs autograd.
        with torch.inference_mode(False), torch.enable_grad():
            return self._train(dataset, model, autosave_path, steps=steps, decay_steps=decay_steps,
                               validation_fraction=validation_fraction, seed=seed, device=device,
                               model_kw=dict(generator=generator, ngf=ngf, ndf=ndf, norm=norm, dropout=bool(dropout),
                                             discriminator=discriminator,
                                             discriminator_layers=discriminator_layers),
                               train_kw=dict(crop=crop, batch_size=batch_size, lr=float(lr),
                                             lambda_l1=float(lambda_l1), gan_mode=gan_mode, precision=precision,
                                             augment=AugmentConfig(jitter=bool(jitter), flip=bool(flip))))

    def _train(self, dataset, model, autosave_path, *, steps, decay_steps, validation_fraction, seed, device,
               model_kw, train_kw):
        from napari_pix2pix.checkpoint import save_checkpoint
        from napari_pix2pix.model import Pix2PixModel
        from napari_pix2pix.training import FinishedEvent, StepEvent, Trainer

        train_set, val_set = dataset.split(float(validation_fraction), seed=int(seed)) \
            if validation_fraction else (dataset, None)
        start = int(model.step) if model is not None else 0
        total = start + int(steps)
        config = TrainConfig(steps=total, decay_steps=None if decay_steps < 0 else min(int(decay_steps), total),
                             seed=int(seed), device=rt.engine_device_name(rt.torch_device(device)),
                             preview_every=0, log_every=max(1, int(steps) // 500),
                             validate_every=max(1, int(steps) // 10) if val_set is not None else 0, **train_kw)
        with tempfile.TemporaryDirectory(prefix="pix2pix-continue-") as tmp:
            resume = None
            if model is not None:
                resume = save_checkpoint(os.path.join(tmp, "continue.safetensors"), _refreshed_checkpoint(model))
            arch = ModelConfig(in_channels=dataset.in_channels, out_channels=dataset.out_channels, **model_kw)
            trainer = Trainer(arch, config, train_set, val_dataset=val_set, out=autosave_path, resume=resume)
        bar = rt.progress_bar(int(steps))
        interrupt: BaseException | None = None
        finished = None
        try:
            for event in trainer.events():
                if isinstance(event, StepEvent) and interrupt is None:
                    try:
                        bar.update(1)  # inside ComfyUI this raises its interrupt exception on Cancel
                        rt.throw_if_interrupted()
                    except rt.interrupt_types() as exc:
                        interrupt = exc
                        trainer.stop()  # the stream ends after this step and saves `out`
                elif isinstance(event, FinishedEvent):
                    finished = event
        except KeyboardInterrupt as exc:  # Ctrl-C outside ComfyUI while a step ran
            interrupt = exc
            trainer.stop()
        history = list(finished.history if finished is not None else trainer.history)
        result = Pix2PixModel.from_checkpoint(_cpu_copy(trainer.checkpoint()), device="cpu")
        result.checkpoint.history = history
        step = trainer.step
        del trainer
        rt.soft_empty_cache()
        if interrupt is not None:
            kept = autosave_path
            if kept is None or finished is None:
                kept = rt.save_path("interrupted", "overwrite") if kept is None else kept
                result.save(kept)
            Pix2PixTrain.last_interrupted = result
            message = (f"training was cancelled at step {step}; the model trained so far was saved to {kept} "
                       "(load it with Load Pix2Pix Model to continue).")
            log.warning("pix2pix: %s", message)
            comfy_exc = rt.interrupt_exception(message)
            if comfy_exc is not None:
                raise comfy_exc
            raise Cancelled(message, "load the saved model and connect it to Train Pix2Pix to continue.")
        curve = cv.loss_curve(history)[None]
        return (result, cv.to_tensor(curve))


# ============================================================================ translate
class Pix2PixTranslate:
    DESCRIPTION = ("Translate an IMAGE batch of any size with a Pix2Pix model, in overlapping tiles. A 1-channel "
                   "model gets the image's luminance; a 1-channel result comes out as gray RGB (and as MASK).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", "MASK", "MASK")
    RETURN_NAMES = ("image", "mask", "uncertainty", "realism")
    FUNCTION = "translate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL,),
                "image": ("IMAGE",),
                "tile": _int(_TILE.tile, 0, 16384, "Tile size in pixels; 0: the whole image at once."),
                "overlap": _int(_TILE.overlap, 0, 8192, "Pixels shared by neighbouring tiles (blended)."),
                "mode": _combo(TEST_MODE_CHOICES, _TILE.mode, "eval: deterministic; train: the paper's "
                               "test-time dropout and batch statistics."),
            },
            "optional": {
                "tile_batch": _int(_TILE.batch_size, 1, 256, "Tiles per forward pass."),
                "device": _device_input(),
                "precision": _combo(PRECISION_CHOICES, _TILE.precision, "Autocast precision."),
                "seed": _int(-1, -1, MAX_INT, "Seed for mode train and for samples; -1: unseeded (samples: 0)."),
                **col.map_inputs(),  # issue 18: samples -> uncertainty output, realism -> realism output
            },
        }

    def translate(self, model, image, tile=_TILE.tile, overlap=_TILE.overlap, mode=_TILE.mode,
                  tile_batch=_TILE.batch_size, device="auto", precision=_TILE.precision, seed=-1,
                  samples=_TILE.samples, realism=_TILE.realism):
        _image_model(model)
        config = TileConfig(tile=int(tile), overlap=min(int(overlap), max(int(tile) // 2 - 1, 0)), mode=mode,
                            batch_size=int(tile_batch), precision=precision,
                            seed=None if seed is None or int(seed) < 0 else int(seed), samples=int(samples))
        bar = rt.progress_bar(1)

        def progress(done, total):
            bar.update_absolute(done, total)

        try:
            with _on_device(model, rt.torch_device(device)):
                outputs = col.translate_outputs(model, image, config, realism=bool(realism), progress=progress,
                                                cancel=rt.processing_interrupted)
        except Cancelled:
            rt.throw_if_interrupted()
            raise
        return tuple(cv.to_tensor(o) for o in outputs)


# ===================================================================== discriminator map
class Pix2PixDiscriminatorMap:
    DESCRIPTION = ("The PatchGAN's verdict on (input, candidate) as a heatmap aligned to the input: bright = "
                   "judged real. Candidate: a target or a generated image; empty = the model's own translation.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("heatmap", "realness")
    FUNCTION = "judge"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL,),
                "image": ("IMAGE", {"tooltip": "The input (A) image(s)."}),
                "colormap": _combo(cv.COLORMAPS, "viridis", "Colours for realness 0 (fake) .. 1 (real)."),
                "overlay": _float(0.0, 0.0, 1.0, 0.05, "Blend the input image under the heatmap (0: heatmap only)."),
            },
            "optional": {
                "candidate": ("IMAGE", {"tooltip": "Target or generated image(s) to judge, same size as the input."}),
                "mode": _combo(TEST_MODE_CHOICES, _TILE.mode, "Generator mode when no candidate is given."),
                "device": _device_input(),
            },
        }

    def judge(self, model, image, colormap="viridis", overlay=0.0, candidate=None, mode=_TILE.mode, device="auto"):
        from napari_pix2pix.discriminator_map import discriminator_maps

        _image_model(model)
        if colormap not in cv.COLORMAPS:
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
