"""The onnxruntime backend: an ``.onnx`` file written by ``export --format onnx``, run without torch.

The file carries what the Predictor needs in its metadata (``metadata_props``): the model
configuration, the normalisation of both sides, the task and the mode the graph was traced in
(always ``eval``: dropout off, running batch-norm statistics). A file without that metadata, or
with other inputs than one ``input`` ``[batch, channels, height, width]`` float32 tensor, is
refused with a message that names what it has.

Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelFileError

FORMAT = "napari-pix2pix-onnx"
FORMAT_VERSION = "1"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
INSTALL_FIX = "install it: pip install 'napari-pix2pix[onnx]' (torch is not needed to run .onnx files)."


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("onnxruntime is not installed, so .onnx models can't be run.", INSTALL_FIX) from None
    return onnxruntime


def _providers(ort, device: str | None) -> tuple[list, str]:
    available = ort.get_available_providers()
    device = device or "auto"
    if device.startswith("cuda") or device == "auto":
        if "CUDAExecutionProvider" in available:
            m = re.fullmatch(r"cuda:(\d+)", device)
            cuda = ("CUDAExecutionProvider", {"device_id": int(m.group(1))}) if m else "CUDAExecutionProvider"
            return [cuda, "CPUExecutionProvider"], "cuda"
        if device != "auto":
            raise ConfigError(f"device {device!r} was asked for, but this onnxruntime has no CUDA provider "
                              f"(it has {', '.join(available)}).",
                              "install onnxruntime-gpu, or use --device cpu.")
    return ["CPUExecutionProvider"], "cpu"


def _describe(args) -> str:
    return ", ".join(f"{a.name!r} ({a.type}, shape {list(a.shape)})" for a in args) or "none"


class OnnxRuntimeBackend:
    """Runs an exported ``.onnx`` generator with onnxruntime (fp32, eval mode)."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: str | None = "auto"):
        self.path = str(path)
        self.device_request = device
        self._open()

    # pickling (dask workers): the session is rebuilt from the file
    def __getstate__(self):
        return {"path": self.path, "device_request": self.device_request}

    def __setstate__(self, state):
        self.path, self.device_request = state["path"], state["device_request"]
        self._open()

    def _open(self) -> None:
        from ..config import ModelConfig

        ort = import_onnxruntime()
        path = Path(self.path)
        fix = "choose an .onnx file written by `python -m napari_pix2pix export MODEL --format onnx`."
        if not path.is_file():
            raise ModelFileError(f"model file {str(path)!r} does not exist.", fix)
        providers, self.device = _providers(ort, self.device_request)
        try:
            self.session_ = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"{path.name} is not a loadable ONNX model ({str(exc).splitlines()[0][:200]}).",
                                 fix) from None
        inputs, outputs = self.session_.get_inputs(), self.session_.get_outputs()
        if [a.name for a in inputs] != [INPUT_NAME] or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(float)":
            raise ModelFileError(f"{path.name} has unexpected inputs: {_describe(inputs)}; napari-pix2pix runs "
                                 f"graphs with exactly one input {INPUT_NAME!r} (tensor(float), "
                                 "[batch, channels, height, width]).", fix)
        if len(outputs) != 1 or len(outputs[0].shape) != 4:
            raise ModelFileError(f"{path.name} has unexpected outputs: {_describe(outputs)}; expected one "
                                 "[batch, channels, height, width] tensor.", fix)
        meta = dict(self.session_.get_modelmeta().custom_metadata_map)
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path.name} has no napari-pix2pix metadata (format {meta.get('format')!r}), so "
                                 "its normalisation and configuration are unknown.", fix)
        try:
            self.metadata = meta
            self.config = ModelConfig.from_dict(json.loads(meta["model"]))
            self.data = json.loads(meta.get("data") or "{}")
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelFileError(f"{path.name} has damaged napari-pix2pix metadata ({exc}).", fix) from None
        channels = inputs[0].shape[1]
        if isinstance(channels, int) and channels != self.config.in_channels:
            raise ModelFileError(f"{path.name}: the graph's input has {channels} channels but its metadata says "
                                 f"{self.config.in_channels}.", "the file is damaged; export it again.")
        self.output_name = outputs[0].name

    # ------------------------------------------------------------------------- properties
    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    @property
    def size_multiple(self) -> int:
        return self.config.size_multiple

    @property
    def task(self) -> str:
        return self.metadata.get("task", "translate")

    torch_device = "cpu"  # where a task adapter (colorize: kornia Lab) runs, when it needs torch

    def normalization(self, side: str):
        from ..data.normalize import Normalization

        stored = self.data.get(f"norm_{side}")
        return Normalization.from_dict(stored) if stored else None

    def normalizations(self, dtype):
        from ..data.normalize import default_normalization

        norm_a = self.normalization("a") or default_normalization(dtype, self.in_channels)
        norm_b = self.normalization("b") or default_normalization(dtype, self.out_channels)
        return norm_a, norm_b

    def is_out_of_memory(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return isinstance(exc, MemoryError) or "failed to allocate memory" in text or "bad_alloc" in text

    @contextlib.contextmanager
    def session(self, mode: str = "eval", seed: int | None = None, precision: str = "fp32"):
        if mode != "eval":
            raise ConfigError(f"test-time mode {mode!r} is not in the ONNX graph: it was exported in eval mode "
                              "(dropout off, running batch-norm statistics).",
                              "use mode eval, or the torch backend with the .safetensors model for train mode.")
        if precision != "fp32":
            raise ConfigError(f"precision {precision!r} is not available with the onnxruntime backend (fp32 only).",
                              "use precision fp32, or the torch backend.")
        sess, out_name = self.session_, self.output_name

        def run(batch: np.ndarray) -> np.ndarray:
            return sess.run([out_name], {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[0]

        yield run

    @contextlib.contextmanager
    def sampling_session(self, precision: str = "fp32"):
        raise ConfigError("stochastic samples (--samples above 1) are not in the ONNX graph: it was exported in "
                          "eval mode, without dropout.",
                          "use samples 1, or the torch backend with the .safetensors model.")
        yield  # pragma: no cover - a generator function, for the context manager

    def realism(self, x, y, stack=()):
        raise ConfigError("an .onnx file holds only the generator, so there is no realism map.",
                          "use the torch backend with the .safetensors model (it holds the discriminator).")
