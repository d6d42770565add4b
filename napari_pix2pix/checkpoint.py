"""Model files: safetensors with everything needed to rebuild, resume and reproduce.

Tensors are namespaced: ``generator/…``, ``discriminator/…``, ``optimizer_g/<i>/<key>``,
``optimizer_d/<i>/<key>``, ``rng/<name>`` (uint8 generator states). The metadata (all strings,
JSON where structured) holds ``format``, ``format_version``, ``model`` (ModelConfig), ``training``
(TrainConfig), ``data`` (normalisation and what it was trained on), ``step``, ``optimizer_*_groups``,
``metrics``, ``history`` and the library versions. A file alone is enough for inference.

Writes are atomic (temporary file in the same folder, fsync, rename) and never hold a NaN or
infinite tensor (:class:`NonFiniteStateError`: the file on disk keeps its last good state). A
write that fails (full disk, read-only folder) puts the model in a printed fallback file instead.

Reads are bounded before anything is allocated: the header's size, tensor count and JSON depth
are checked, then safetensors parses it (``safe_open(...).metadata()``); every metadata field is
type-checked, the architecture is bounded and compared, shape by shape and dtype by dtype, with
the tensors the header lists (networks built on torch's meta device, which allocates nothing);
only then are tensors read, and any NaN or infinite one is refused. A damaged or foreign file
raises a one-line :class:`ModelFileError`.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import limits
from .errors import ModelFileError, TrainingError
from .paths import WriteError, atomic_write, clean_stale_temp_files

FORMAT = "napari-pix2pix"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = limits.MAX_HEADER_BYTES
ENV_RESCUE_DIR = "NAPARI_PIX2PIX_RESCUE_DIR"
_FIX_FILE = "choose a .safetensors model file written by napari-pix2pix (train, or import a reference .pth)."
_FIX_DAMAGED = "the file is damaged or was not written by napari-pix2pix; use another checkpoint."
# stale temporary siblings younger than this may belong to a write in progress
STALE_TEMP_SECONDS = 30.0


class NonFiniteStateError(TrainingError, ValueError):
    """A save was refused because a weight, buffer or optimizer tensor is NaN or infinite."""


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
            tensors[f"{prefix}/{index}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
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


def _non_finite(tensors: dict) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity. One reduction per
    tensor first (a sum is finite only when every element is; float32 accumulation for the
    half types), element by element only where a sum is not finite (a NaN, or an overflow)."""
    import torch

    floats = [(name, t) for name, t in tensors.items() if t.is_floating_point() and t.numel()]
    if not floats:
        return []
    with torch.no_grad():
        sums = torch.stack([t.sum(dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
                            .to(torch.float64) for _, t in floats])
        suspects = (~torch.isfinite(sums)).nonzero().flatten().tolist()
        return [floats[i][0] for i in suspects if not bool(torch.isfinite(floats[i][1]).all())]


def _check_finite(tensors: dict, path: Path, bad: list[str] | None = None) -> None:
    bad = _non_finite(tensors) if bad is None else bad
    if bad:
        shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
        raise NonFiniteStateError(
            f"not saved: {shown} hold{'s' if len(bad) == 1 else ''} NaN or infinite values, so {path.name} "
            "was left as it was (its last good state).",
            "training diverged: resume from the file on disk with a lower learning rate, check the data for "
            "NaN/inf or extreme values, or try precision fp32.")


def _rescue_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(ENV_RESCUE_DIR):
        dirs.append(Path(os.environ[ENV_RESCUE_DIR]))
    dirs += [Path.home() / "napari-pix2pix-rescue", Path(tempfile.gettempdir()) / "napari-pix2pix-rescue"]
    return dirs


def _writable(tensors: dict) -> dict:
    """The tensors as safetensors writes them: detached, on the CPU, dense. Written straight from
    the caller's tensors: a copy is made only where one is needed (another device, a strided
    view, a second name for memory already listed, which safetensors refuses). The write happens
    before the caller runs another step, so nothing changes the tensors while they are written."""
    out, seen = {}, set()
    for name, value in tensors.items():
        t = value.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if not t.is_contiguous():
            t = t.contiguous()
        if t.numel():
            storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if storage in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
                t = t.clone()
                storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            seen.add(storage)
        out[name] = t
    return out


def _write(path: Path, tensors: dict, meta: dict) -> Path:
    """safetensors' writer inside :func:`~napari_pix2pix.paths.atomic_write`, with the finite
    check beside it (a thread: both release the GIL). A refusal comes before the rename, so a
    refused file never replaces ``path`` (its temporary file is removed)."""
    import threading

    from safetensors import torch as st

    def write(tmp) -> None:
        found: dict = {}

        def screen() -> None:
            try:
                found["bad"] = _non_finite(tensors)
            except BaseException as exc:  # noqa: BLE001 - raised in the writing thread below
                found["error"] = exc

        worker = threading.Thread(target=screen, name="pix2pix-finite-check", daemon=True)
        worker.start()
        try:
            st.save_file(tensors, tmp, metadata=meta)
        finally:
            worker.join()
            if "error" in found:
                raise found["error"]
            _check_finite(tensors, path, found["bad"])  # the refusal wins over a failed write

    return atomic_write(path, write, what="model file")


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint, *, fallback: bool = True) -> Path:
    """Write ``ckpt`` atomically as safetensors. Returns the path.

    Refuses (:class:`NonFiniteStateError`; the file at ``path`` is left as it was) when any weight, buffer or optimizer
    tensor is NaN or infinite. Removes stale ``.<name>.*.tmp`` siblings left by a killed write.
    When the write fails with an OSError and ``fallback`` is True, the model is written to a
    rescue folder (``$NAPARI_PIX2PIX_RESCUE_DIR``, ``~/napari-pix2pix-rescue`` or the temporary
    folder) and a :class:`~napari_pix2pix.paths.WriteError` naming that file is raised."""
    import torch

    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, state in (("generator", ckpt.generator), ("discriminator", ckpt.discriminator),
                          ("generator_raw", ckpt.generator_raw or {})):
        for key, value in state.items():
            tensors[f"{prefix}/{key}"] = value
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
        tensors[f"rng/{name}"] = state
    tensors = _writable(tensors)
    clean_stale_temp_files(path, STALE_TEMP_SECONDS)
    try:
        return _write(path, tensors, meta)
    except WriteError as exc:
        if not fallback:
            raise
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in _rescue_dirs():
            rescue = folder / f"{path.stem}-{stamp}-step{int(ckpt.step)}{path.suffix or '.safetensors'}"
            try:
                written = _write(rescue, tensors, meta)
            except (WriteError, OSError):
                continue
            raise WriteError(f"{exc.problem} The model was saved to {str(written)!r} instead.",
                             f"{exc.fix.rstrip('.')}; then move that file where you want it.",
                             exc.errno, fallback=written) from exc
        raise WriteError(f"{exc.problem} No fallback file could be written either.", exc.fix, exc.errno) from exc


def checkpoint_bytes(model, training: bool = True) -> int:
    """About how many bytes a model file of ``model`` (a ModelConfig) takes: the weights and
    buffers of both networks, times three with Adam's two moments when ``training``, plus
    room for the metadata. Computed on the meta device (allocates nothing)."""
    weights = sum(limits.state_bytes(limits.expected_state(model, what)) for what in ("generator", "discriminator"))
    return weights * (3 if training else 1) + (2 << 20)


def preflight_training(model, out=None, checkpoint_dir=None) -> int:
    """Before the first step: check that ``out`` and ``checkpoint_dir`` (its ``last`` and ``best``
    files) can be written and that their disks have room for the checkpoints. Raises
    :class:`~napari_pix2pix.paths.WriteError` (Problem/Fix). Returns the bytes one checkpoint takes."""
    from .paths import preflight

    need = checkpoint_bytes(model)
    targets = []
    if checkpoint_dir:
        targets += [(Path(checkpoint_dir) / "last.safetensors", "checkpoint"),
                    (Path(checkpoint_dir) / "best.safetensors", "checkpoint")]
    if out:
        targets.append((Path(out), "model file"))
    per_device: dict = {}
    for path, what in targets:
        preflight(path, 0, what)
        try:
            device = path.parent.stat().st_dev
        except OSError:
            device = None
        per_device[device] = per_device.get(device, 0) + need
    for path, what in targets:  # every file on one disk must fit together
        try:
            device = path.parent.stat().st_dev
        except OSError:
            device = None
        preflight(path, per_device.get(device, need), what)
    return need


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


def _check_path(path: Path) -> int:
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file.",
                             "choose the .safetensors file inside it (e.g. last.safetensors).")
    if not path.exists():
        raise ModelFileError(f"model file {str(path)!r} does not exist.", _FIX_FILE)
    if not path.is_file():
        raise ModelFileError(f"{str(path)!r} is not a regular file.", _FIX_FILE)
    return path.stat().st_size


def read_header(path: str | os.PathLike) -> tuple[dict, dict]:
    """Check a safetensors header cheaply, then read it with safetensors, without loading tensors.

    Returns ``(tensor_entries, metadata)``: ``{name: {"dtype": "F32", "shape": [...]}}`` and the
    string metadata. Before safetensors sees the file, the header's declared length (at most
    :data:`~napari_pix2pix.limits.MAX_HEADER_BYTES` and inside the file), its JSON nesting depth
    and its number of tensors are bounded. Raises :class:`ModelFileError` for anything that is
    not a well-formed safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    size = _check_path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelFileError(f"{path.name} is not a model file: it is only {size} bytes long.", _FIX_FILE)
            (n,) = struct.unpack("<Q", head)
            if n > limits.MAX_HEADER_BYTES or n + 8 > size:
                what = _describe_foreign(head)
                if what == "its header is not safetensors" and n <= 2**40:
                    what = (f"its header claims {n:,} bytes, more than the limit of {limits.MAX_HEADER_BYTES:,}"
                            if n > limits.MAX_HEADER_BYTES else "it is truncated or not safetensors")
                raise ModelFileError(f"{path.name} is not a usable model file: {what}.", _FIX_FILE)
            raw = fh.read(n)
    except OSError as exc:
        raise ModelFileError(f"{path.name} cannot be read ({exc.strerror or exc}).", _FIX_FILE) from None
    if limits.json_depth(raw) > limits.MAX_JSON_DEPTH:
        raise ModelFileError(f"{path.name} has a malformed safetensors header (nested more than "
                             f"{limits.MAX_JSON_DEPTH} levels deep).", _FIX_FILE)
    if raw.count(b'"data_offsets"') > limits.MAX_TENSORS:
        raise ModelFileError(f"{path.name} lists more than {limits.MAX_TENSORS:,} tensors; no napari-pix2pix "
                             "model has that many.", _FIX_FILE)
    try:
        with safe_open(str(path), "pt") as fh:
            metadata = fh.metadata() or {}
            entries = {}
            for name in fh.keys():
                info = fh.get_slice(name)
                entries[name] = {"dtype": info.get_dtype(), "shape": list(info.get_shape())}
    except SafetensorError as exc:
        reason = str(exc).replace("Error while deserializing header: ", "").strip().splitlines()
        reason = (reason[0] if reason else exc.__class__.__name__)[:160]
        if "not fully covered" in reason:
            raise ModelFileError(f"{path.name} is truncated or has data its header does not describe ({reason}).",
                                 "the file is damaged (an interrupted copy?); copy it again or use another "
                                 "checkpoint.") from None
        raise ModelFileError(f"{path.name} has a malformed safetensors header ({reason}).", _FIX_FILE) from None
    except OSError as exc:
        raise ModelFileError(f"{path.name} cannot be read ({exc.strerror or exc}).", _FIX_FILE) from None
    return entries, dict(metadata)


def _json(metadata: dict, key: str, path: Path, kind: type, default=None):
    """A JSON metadata field, depth-limited and of type ``kind`` (dict or list)."""
    if key not in metadata:
        return default
    value = limits.loads(metadata[key], f"{path.name}: metadata field {key!r}", _FIX_DAMAGED)
    if value is None and default is None:
        return None
    if not isinstance(value, kind):
        raise ModelFileError(f"{path.name}: metadata field {key!r} is a {type(value).__name__}, not a "
                             f"{'JSON object' if kind is dict else 'JSON list'}.", _FIX_DAMAGED)
    return value


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_data(data: dict, name: str) -> dict:
    """Type-check the ``data`` metadata (normalisations, label flags) of a model file: the
    normalisations must rebuild, with finite bounds and channel/class counts within the limits."""
    from .data.normalize import Normalization

    for side in ("a", "b"):
        flag = data.get(f"{side}_is_labels", False)
        if not isinstance(flag, bool):
            raise ModelFileError(f"{name}: metadata {side}_is_labels={flag!r} is not true/false.", _FIX_DAMAGED)
        norm = data.get(f"norm_{side}")
        if norm is None:
            continue
        where = f"{name}: normalisation norm_{side}"
        if not isinstance(norm, dict):
            raise ModelFileError(f"{where} is a {type(norm).__name__}, not a JSON object.", _FIX_DAMAGED)
        for key in ("low", "high"):
            if key in norm and not _finite_number(norm[key]):
                raise ModelFileError(f"{where} has {key}={norm[key]!r}, not a finite number.", _FIX_DAMAGED)
        for key in ("channels", "n_classes"):
            value = norm.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limits.MAX_CHANNELS:
                raise ModelFileError(f"{where} has {key}={str(value)[:40]}, outside 0..{limits.MAX_CHANNELS}.",
                                     _FIX_DAMAGED)
        pct = norm.get("percentiles")
        if pct is not None and not (isinstance(pct, list) and len(pct) == 2 and all(map(_finite_number, pct))):
            raise ModelFileError(f"{where} has percentiles={str(pct)[:40]}, not two finite numbers.", _FIX_DAMAGED)
        for key in ("mode", "dtype", "label_encoding"):
            if key in norm and not isinstance(norm[key], str):
                raise ModelFileError(f"{where} has {key}={str(norm[key])[:40]}, not a string.", _FIX_DAMAGED)
        try:
            import numpy as np

            np.dtype(norm.get("dtype", "float32"))
            Normalization.from_dict(norm)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{where} is invalid ({str(exc).splitlines()[0][:120]}).", _FIX_DAMAGED) from None
    return data


def check_entries(entries: dict, model, path: Path, size: int) -> None:
    """Compare the tensors a header lists with those ``model`` (a ModelConfig) needs, key by
    key, shape by shape and dtype by dtype, before any network is built or tensor read."""
    from .errors import ConfigError

    try:
        limits.check_architecture(model, path.name)
    except ConfigError as exc:
        raise ModelFileError(f"{path.name} describes an impossible architecture: {exc.problem}", _FIX_DAMAGED) \
            from None
    for what in ("generator", "discriminator", "generator_raw"):  # generator_raw: beside EMA weights
        prefix = what + "/"
        found = {k[len(prefix):]: v for k, v in entries.items() if k.startswith(prefix)}
        if not found and what != "generator":
            continue
        net = "generator" if what == "generator_raw" else what
        expected = limits.expected_state(model, net)
        need = limits.state_bytes(expected)
        if need > size:
            params = sum(math.prod(s) for _, s in expected.values())
            raise ModelFileError(
                f"{path.name}: its metadata describes a {what} of {params:,} parameters ({need / 2**20:.1f} MiB), "
                f"but the file holds only {size:,} bytes.", _FIX_DAMAGED)
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = [f"{k} {tuple(found[k]['shape'])} vs {expected[k][1]}" for k in sorted(set(found) & set(expected))
                 if tuple(found[k]["shape"]) != expected[k][1]]
        if missing or unexpected or wrong:
            raise ModelFileError(f"{path.name}: the {what} weights do not fit the architecture "
                                 f"({key_mismatch(missing, unexpected, wrong)}).",
                                 "the file's metadata and tensors disagree: it is damaged; use another checkpoint.")
        dtypes = [f"{k} {found[k]['dtype']} vs {_st_dtype(expected[k][0])}"
                  for k in sorted(found) if found[k]["dtype"] != _st_dtype(expected[k][0])]
        if dtypes:
            raise ModelFileError(f"{path.name}: the {what} tensors have the wrong data types "
                                 f"({', '.join(dtypes[:4])}{' ...' if len(dtypes) > 4 else ''}).", _FIX_DAMAGED)
        if what != "generator_raw":
            _check_optimizer(entries, "optimizer_g" if what == "generator" else "optimizer_d",
                             limits.parameter_shapes(model, what), path)
    for name, entry in entries.items():
        if name.startswith("rng/") and (entry["dtype"] != "U8" or len(entry["shape"]) != 1
                                        or entry["shape"][0] > 1 << 20):
            raise ModelFileError(f"{path.name}: random-number state {name} is not a small byte vector "
                                 f"({entry['dtype']} {entry['shape'][:4]}).", _FIX_DAMAGED)


def _check_optimizer(entries: dict, prefix: str, shapes: list, path: Path) -> None:
    """Adam's state: ``<prefix>/<i>/exp_avg|exp_avg_sq`` shaped like parameter ``i``, ``step`` a scalar."""
    for name, entry in entries.items():
        if not name.startswith(prefix + "/"):
            continue
        parts = name.split("/")
        ok = len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(shapes)
        if ok and parts[2] in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            ok = tuple(entry["shape"]) == shapes[int(parts[1])] and entry["dtype"] == "F32"
        elif ok and parts[2] == "step":
            ok = len(entry["shape"]) <= 1 and math.prod(entry["shape"]) == 1
        else:
            ok = False
        if not ok:
            raise ModelFileError(f"{path.name}: optimizer tensor {name} ({entry['dtype']} {entry['shape'][:4]}) "
                                 "does not fit the architecture.", _FIX_DAMAGED)


def _st_dtype(dtype) -> str:
    """safetensors' name of a torch dtype (``F32``, ``I64`` ...)."""
    import torch

    names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL"}
    return names.get(dtype, str(dtype))


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Checkpoint:
    """Read a napari-pix2pix model file. Raises :class:`ModelFileError` naming what is wrong.

    Everything is checked before the networks are built or any tensor is read (see the module
    docstring); NaN or infinite tensors and non-finite normalisations are refused."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .config import ConfigError, ModelConfig, TrainConfig

    path = Path(path)
    entries, metadata = read_header(path)
    size = path.stat().st_size
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path.name} is a safetensors file from another project, not a napari-pix2pix model.",
                             "to bring in a reference pix2pix generator use `python -m napari_pix2pix import`; "
                             "otherwise choose a model trained with napari-pix2pix.")
    try:
        model = ModelConfig.from_dict(_json(metadata, "model", path, dict, {}))
        training = _json(metadata, "training", path, dict)
        training = TrainConfig.from_dict(training) if training is not None else None
    except ModelFileError:
        raise
    except (ConfigError, TypeError, ValueError) as exc:
        text = getattr(exc, "problem", None) or str(exc)
        text = text.splitlines()[0][:200] if text else exc.__class__.__name__
        raise ModelFileError(f"{path.name} has an invalid configuration: {text}",
                             "the file is damaged or from an incompatible version.") from None
    step = metadata.get("step", "0")
    if not (isinstance(step, str) and step.isdigit() and len(step) < 19):
        raise ModelFileError(f"{path.name}: metadata 'step' is not a number.", "the file is damaged.")
    data = check_data(_json(metadata, "data", path, dict, {}) or {}, path.name)
    metrics = _json(metadata, "metrics", path, dict, {}) or {}
    history = _json(metadata, "history", path, list, []) or []
    groups = {}
    for key in ("optimizer_g_groups", "optimizer_d_groups"):
        value = _json(metadata, key, path, list)
        if value is not None and not all(isinstance(g, dict) for g in value):
            raise ModelFileError(f"{path.name}: metadata field {key!r} is not a list of JSON objects.", _FIX_DAMAGED)
        groups[key] = None if value is None else json.dumps(value)
    if not any(k.startswith("generator/") for k in entries):
        raise ModelFileError(f"{path.name} holds no generator weights.", "choose a complete model file.")
    check_entries(entries, model, path, size)
    removed = clean_stale_temp_files(path, STALE_TEMP_SECONDS)
    if removed:
        import warnings

        warnings.warn(f"removed {len(removed)} stale temporary file(s) beside {path.name} left by an "
                      "interrupted save.", stacklevel=2)
    try:
        tensors = load_file(str(path), device=map_location)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelFileError(f"{path.name} could not be read ({str(exc).splitlines()[0][:160]}).",
                             "the file is damaged; use another checkpoint.") from None
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ModelFileError(f"{path.name}: tensor {bad[0]} holds NaN or infinite values"
                             + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + ".",
                             "the checkpoint is broken (training diverged); use an earlier one.")

    def part(prefix: str) -> dict:
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

    return Checkpoint(
        model=model, step=int(step), training=training, data=data,
        generator=part("generator"), discriminator=part("discriminator"), generator_raw=part("generator_raw"),
        optimizer_g=_optimizer_state("optimizer_g", groups["optimizer_g_groups"], tensors),
        optimizer_d=_optimizer_state("optimizer_d", groups["optimizer_d_groups"], tensors),
        rng=part("rng"), metrics=metrics, history=history, metadata=metadata)


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
    import torch

    kinds = [f"{k} {state[k].dtype} vs {own[k].dtype}" for k in sorted(own)
             if state[k].is_floating_point() != own[k].is_floating_point()]
    if kinds:
        raise ModelFileError(f"{Path(path).name}: the {what} tensors have the wrong data types "
                             f"({', '.join(kinds[:4])}{' ...' if len(kinds) > 4 else ''}).",
                             "the file is damaged; use another checkpoint.")
    bad = [k for k in sorted(state) if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all())]
    if bad:
        raise ModelFileError(f"{Path(path).name}: the {what} tensor {bad[0]} holds NaN or infinite values"
                             + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + ".",
                             "the checkpoint is broken (training diverged); use an earlier one.")
    module.load_state_dict(state)
