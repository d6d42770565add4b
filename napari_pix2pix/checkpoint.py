"""Model files: safetensors with everything needed to rebuild, resume and reproduce.

Tensors are namespaced: ``generator/…``, ``discriminator/…``, ``optimizer_g/<i>/<key>``,
``optimizer_d/<i>/<key>``, ``rng/<name>`` (uint8 generator states). The metadata (all strings,
JSON where structured) holds ``format``, ``format_version``, ``model`` (ModelConfig), ``training``
(TrainConfig), ``data`` (normalisation and what it was trained on), ``step``, ``optimizer_*_groups``,
``metrics``, ``history`` and the library versions. A file alone is enough for inference.

Writes are atomic (temporary file in the same folder, fsync, rename), and every read is
checked before any tensor is touched: a damaged or foreign file raises :class:`ModelFileError`.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelFileError
from .paths import atomic_write  # noqa: F401 - re-exported: checkpoints are written through it

FORMAT = "napari-pix2pix"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}


@dataclass
class Checkpoint:
    """What a model file holds. State dicts are CPU tensors; configs are our dataclasses."""

    model: Any  # ModelConfig
    step: int = 0
    training: Any = None  # TrainConfig | None
    data: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)
    discriminator: dict = field(default_factory=dict)
    optimizer_g: dict | None = None
    optimizer_d: dict | None = None
    rng: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    # with an EMA of G: ``generator`` holds the averaged weights (what inference uses) and
    # ``generator_raw`` the trained ones (what a resume continues from)
    generator_raw: dict = field(default_factory=dict)


def _library_version() -> str:
    from . import __version__

    return __version__


def _optimizer_tensors(prefix: str, state: dict, tensors: dict) -> str:
    """Flatten an optimizer state_dict into ``tensors``; return its param_groups as JSON."""
    import torch

    for index, values in state["state"].items():
        for key, value in values.items():
            if not torch.is_tensor(value):
                value = torch.tensor(value)
            tensors[f"{prefix}/{index}/{key}"] = value.detach().cpu().contiguous()
    return json.dumps(state["param_groups"])


def _optimizer_state(prefix: str, groups_json: str | None, tensors: dict) -> dict | None:
    if groups_json is None:
        return None
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": json.loads(groups_json)}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` atomically as safetensors. Returns the path."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for prefix, state in (("generator", ckpt.generator), ("discriminator", ckpt.discriminator),
                          ("generator_raw", ckpt.generator_raw or {})):
        for key, value in state.items():
            tensors[f"{prefix}/{key}"] = value.detach().cpu().contiguous().clone()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": json.dumps(ckpt.model.to_dict()),
        "step": str(int(ckpt.step)),
        "data": json.dumps(ckpt.data or {}),
        "metrics": json.dumps(ckpt.metrics or {}),
        "history": json.dumps(ckpt.history[-5000:] if ckpt.history else []),
        "library_version": _library_version(),
        "torch_version": torch.__version__,
    }
    if "imported_from" in (ckpt.metadata or {}):
        meta["imported_from"] = ckpt.metadata["imported_from"]
    if ckpt.training is not None:
        meta["training"] = json.dumps(ckpt.training.to_dict())
    if ckpt.optimizer_g is not None:
        meta["optimizer_g_groups"] = _optimizer_tensors("optimizer_g", ckpt.optimizer_g, tensors)
    if ckpt.optimizer_d is not None:
        meta["optimizer_d_groups"] = _optimizer_tensors("optimizer_d", ckpt.optimizer_d, tensors)
    for name, state in (ckpt.rng or {}).items():
        tensors[f"rng/{name}"] = state.detach().cpu().contiguous().clone()
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _describe_foreign(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "it is a PNG image"
    if head[:2] in (b"II", b"MM"):
        return "it is a TIFF image"
    if head.startswith(b"\xff\xd8"):
        return "it is a JPEG image"
    if head.startswith(b"PK"):
        return "it is a zip archive (a PyTorch .pth checkpoint?)"
    if head.startswith(b"\x80"):
        return "it is a Python pickle"
    return "its header is not safetensors"


def read_header(path: str | os.PathLike) -> tuple[dict, dict]:
    """Parse and check a safetensors header without loading tensors.

    Returns ``(tensor_entries, metadata)``. Raises :class:`ModelFileError` for anything that is
    not a well-formed safetensors file: absurd header sizes, malformed JSON, unknown dtypes,
    offsets outside the file, or a header that claims more data than the file holds.
    """
    path = Path(path)
    fix = "choose a .safetensors model file written by napari-pix2pix (train, or import a reference .pth)."
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist.", fix)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{path.name} is not a model file: it is only {size} bytes long.", fix)
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or n + 8 > size:
            what = _describe_foreign(head) if n > MAX_HEADER_BYTES else "it is truncated or not safetensors"
            raise ModelFileError(f"{path.name} is not a usable model file: {what}.", fix)
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path.name} has a malformed safetensors header ({exc.__class__.__name__}).", fix)
    if not isinstance(header, dict):
        raise ModelFileError(f"{path.name} has a malformed safetensors header (not a JSON object).", fix)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path.name} has malformed metadata (values must be strings).", fix)
    data_bytes = size - 8 - n
    for name, entry in header.items():
        try:
            dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError
                count *= dim
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{path.name}: tensor {name!r} has a malformed header entry.", fix)
        if not isinstance(dtype, str) or dtype not in _DTYPE_SIZES:
            raise ModelFileError(f"{path.name}: tensor {name!r} has unsupported dtype {dtype!r}.", fix)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data_bytes):
            raise ModelFileError(f"{path.name}: tensor {name!r} claims data beyond the end of the file "
                                 "(the file is truncated).", fix)
        if end - start != count * _DTYPE_SIZES[dtype]:
            raise ModelFileError(f"{path.name}: tensor {name!r} size does not match its shape.", fix)
    return header, metadata


def _json(metadata: dict, key: str, path: Path, default=None):
    if key not in metadata:
        return default
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path.name}: metadata field {key!r} is not valid JSON.",
                             "the file is damaged; use another checkpoint.")


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Checkpoint:
    """Read a napari-pix2pix model file. Raises :class:`ModelFileError` naming what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .config import ConfigError, ModelConfig, TrainConfig

    path = Path(path)
    _, metadata = read_header(path)
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path.name} is a safetensors file from another project, not a napari-pix2pix model.",
                             "to bring in a reference pix2pix generator use `python -m napari_pix2pix import`; "
                             "otherwise choose a model trained with napari-pix2pix.")
    try:
        tensors = load_file(str(path), device=map_location)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelFileError(f"{path.name} could not be read ({exc}).", "the file is damaged; use another checkpoint.")
    try:
        model = ModelConfig.from_dict(_json(metadata, "model", path, {}))
        training = _json(metadata, "training", path)
        training = TrainConfig.from_dict(training) if training is not None else None
    except (ConfigError, TypeError) as exc:
        raise ModelFileError(f"{path.name} has an invalid configuration: {exc}",
                             "the file is damaged or from an incompatible version.")

    def part(prefix: str) -> dict:
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

    try:
        step = int(metadata.get("step", "0"))
    except ValueError:
        raise ModelFileError(f"{path.name}: metadata 'step' is not a number.", "the file is damaged.")
    ckpt = Checkpoint(
        model=model, step=step, training=training,
        data=_json(metadata, "data", path, {}) or {},
        generator=part("generator"), discriminator=part("discriminator"), generator_raw=part("generator_raw"),
        optimizer_g=_optimizer_state("optimizer_g", metadata.get("optimizer_g_groups"), tensors),
        optimizer_d=_optimizer_state("optimizer_d", metadata.get("optimizer_d_groups"), tensors),
        rng=part("rng"), metrics=_json(metadata, "metrics", path, {}) or {},
        history=_json(metadata, "history", path, []) or [], metadata=metadata)
    if not ckpt.generator:
        raise ModelFileError(f"{path.name} holds no generator weights.", "choose a complete model file.")
    return ckpt


def key_mismatch(missing, unexpected, wrong, n: int = 6) -> str:
    """'missing keys: ...; unexpected keys: ...; wrong shapes: ...' with at most ``n`` of each."""
    def show(keys):
        keys = list(keys)
        return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")

    parts = [f"{label}: {show(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes (file vs expected)", wrong))
             if keys]
    return "; ".join(parts)


def load_state(module, state: dict, what: str, path: str | os.PathLike) -> None:
    """``module.load_state_dict(state)`` with an error that lists missing/unexpected keys and
    shape mismatches instead of torch's traceback."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
             if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise ModelFileError(f"{Path(path).name}: the {what} weights do not fit the architecture "
                             f"({key_mismatch(missing, unexpected, wrong)}).",
                             "check the architecture options (generator, norm, ngf, channels) match the file.")
    module.load_state_dict(state)
