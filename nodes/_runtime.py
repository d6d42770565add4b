"""ComfyUI runtime hooks, with no-op fallbacks so that the nodes import and run in plain Python.

Every hook looks the ComfyUI module up when it is called (never at import time), so the pack
works whichever way it is loaded, and tests can install stand-ins in ``sys.modules``.

* progress: ``comfy.utils.ProgressBar`` (its update also raises ComfyUI's interrupt exception
  when the user pressed Cancel); fallback: a bar that does nothing.
* cancel: ``comfy.model_management.processing_interrupted()`` /
  ``throw_exception_if_processing_interrupted()``; fallback: never interrupted.
* device: ``comfy.model_management.get_torch_device()``; fallback: the engine's ``auto``.
* files: a ``pix2pix`` model folder registered with ``folder_paths`` (``models/pix2pix``);
  fallback: ``$NAPARI_PIX2PIX_MODEL_DIR`` or ``~/.napari-pix2pix/models``. Dataset folders are
  confined to ComfyUI's input folder when ``folder_paths`` is present.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path, PurePosixPath

from napari_pix2pix.errors import ConfigError, DatasetError, InputError, ModelFileError
from napari_pix2pix.paths import safe_join

log = logging.getLogger("napari_pix2pix.nodes")

FOLDER = "pix2pix"
MODEL_EXTENSIONS = {".safetensors"}
MODEL_DIR_ENV = "NAPARI_PIX2PIX_MODEL_DIR"


def _module(name: str):
    """``sys.modules[name]`` or a fresh import; None when the module does not exist."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def comfy_utils():
    return _module("comfy.utils") if _module("comfy") is not None else None


def model_management():
    return _module("comfy.model_management") if _module("comfy") is not None else None


def folder_paths():
    return _module("folder_paths")


# ------------------------------------------------------------------------------ progress
class NullProgress:
    """Stand-in for ``comfy.utils.ProgressBar`` outside ComfyUI."""

    def __init__(self, total: int = 0):
        self.total, self.current = int(total), 0

    def update(self, value: int = 1) -> None:
        self.current += int(value)

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        self.current = int(value)
        if total is not None:
            self.total = int(total)


def progress_bar(total: int):
    utils = comfy_utils()
    cls = getattr(utils, "ProgressBar", None) if utils is not None else None
    return cls(int(total)) if cls is not None else NullProgress(total)


# -------------------------------------------------------------------------------- cancel
def interrupt_types() -> tuple[type, ...]:
    """Exception types that mean 'the user pressed Cancel' (ComfyUI's, plus Ctrl-C)."""
    mm = model_management()
    exc = getattr(mm, "InterruptProcessingException", None) if mm is not None else None
    return ((exc,) if isinstance(exc, type) else ()) + (KeyboardInterrupt,)


def processing_interrupted() -> bool:
    mm = model_management()
    fn = getattr(mm, "processing_interrupted", None) if mm is not None else None
    return bool(fn()) if fn is not None else False


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel (no-op outside ComfyUI)."""
    mm = model_management()
    fn = getattr(mm, "throw_exception_if_processing_interrupted", None) if mm is not None else None
    if fn is not None:
        fn()


def interrupt_exception(message: str) -> BaseException | None:
    """A new instance of ComfyUI's interrupt exception, or None outside ComfyUI."""
    mm = model_management()
    exc = getattr(mm, "InterruptProcessingException", None) if mm is not None else None
    if not isinstance(exc, type):
        return None
    try:
        return exc(message)
    except TypeError:
        return exc()


def soft_empty_cache() -> None:
    mm = model_management()
    fn = getattr(mm, "soft_empty_cache", None) if mm is not None else None
    if fn is not None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - freeing caches is best effort
            pass


# -------------------------------------------------------------------------------- device
def torch_device(choice: str = "auto"):
    """``auto``: ComfyUI's device inside ComfyUI, else the engine's choice (cuda, mps, cpu)."""
    import torch

    from napari_pix2pix.devices import resolve_device

    if choice in (None, "", "auto"):
        mm = model_management()
        fn = getattr(mm, "get_torch_device", None) if mm is not None else None
        if fn is not None:
            return torch.device(fn())
        return resolve_device("auto")
    return resolve_device(choice)


def engine_device_name(device) -> str:
    """The engine's device setting (TrainConfig.device) for a torch device, index kept (``cuda:1``)
    when the schema accepts it; otherwise its kind (cuda, mps or cpu)."""
    from napari_pix2pix.config import TrainConfig
    from napari_pix2pix.schema import accepts, get_option

    opt = get_option(TrainConfig, "device")
    name = str(device)
    if accepts(opt, name):
        return name
    kind = getattr(device, "type", name).split(":")[0]
    if not accepts(opt, kind):
        log.warning("pix2pix: device %s is not supported for training; using the CPU.", device)
        return "cpu"
    return kind


# ---------------------------------------------------------------------------- node text
def show_text(node_id, text: str) -> bool:
    """Show ``text`` on node ``node_id`` while it runs (ComfyUI's ``send_progress_text``, in
    recent servers); False where that is not available (the text still goes to the log)."""
    if not text:
        return False
    server = _module("server") if node_id is not None and _module("comfy") is not None else None
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    send = getattr(instance, "send_progress_text", None)
    if send is None:
        log.info("pix2pix: %s", text)
        return False
    try:
        send(text, node_id)
    except Exception:  # noqa: BLE001 - a display hook must never stop training
        log.info("pix2pix: %s", text)
        return False
    return True


# ------------------------------------------------------------------------- model folder
def fallback_model_dir() -> Path:
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env) if env else Path.home() / ".napari-pix2pix" / "models"


def register_model_folder() -> bool:
    """Register ``models/pix2pix`` (``.safetensors``) with ``folder_paths``; False outside ComfyUI.
    Paths added for ``pix2pix`` in extra_model_paths.yaml are kept."""
    fp = folder_paths()
    if fp is None or not hasattr(fp, "folder_names_and_paths"):
        return False
    default = os.path.join(getattr(fp, "models_dir", os.getcwd()), FOLDER)
    table = fp.folder_names_and_paths
    if FOLDER not in table:
        table[FOLDER] = ([default], set(MODEL_EXTENSIONS))
    else:
        paths, exts = table[FOLDER][0], table[FOLDER][1]
        if default not in paths:
            if hasattr(fp, "add_model_folder_path"):
                fp.add_model_folder_path(FOLDER, default)
            else:
                paths.append(default)
        if isinstance(exts, set):
            exts.update(MODEL_EXTENSIONS)
        else:
            table[FOLDER] = (table[FOLDER][0], set(exts) | MODEL_EXTENSIONS)
    cache = getattr(fp, "filename_list_cache", None)
    if isinstance(cache, dict):
        cache.pop(FOLDER, None)
    return True


def model_dirs() -> list[Path]:
    """Folders searched for models; the first is where models are saved."""
    fp = folder_paths()
    if fp is not None and hasattr(fp, "folder_names_and_paths"):
        register_model_folder()
        getter = getattr(fp, "get_folder_paths", None)
        paths = getter(FOLDER) if getter is not None else fp.folder_names_and_paths[FOLDER][0]
        return [Path(p) for p in paths]
    return [fallback_model_dir()]


def list_models() -> list[str]:
    """``.safetensors`` files of the model folder(s), as names relative to their folder."""
    fp = folder_paths()
    names: list[str] = []
    if fp is not None and hasattr(fp, "get_filename_list"):
        register_model_folder()
        names = list(fp.get_filename_list(FOLDER))
    else:
        for root in model_dirs():
            if root.is_dir():
                names += [p.relative_to(root).as_posix() for p in root.rglob("*")
                          if p.is_file() and not p.name.startswith(".")]
    return sorted({n.replace("\\", "/") for n in names if Path(n).suffix.lower() in MODEL_EXTENSIONS})


def _name_fix(what: str) -> str:
    return (f"give the {what} relative to the pix2pix model folder, e.g. 'my_model' or "
            "'experiment1/my_model', without '..' or a leading '/'.")


def _join(root: Path, name: str, what: str = "model name") -> Path:
    """``root / name`` through :func:`paths.safe_join` (no absolute path, drive, ``..``, NUL, or a
    symbolic link that leads out of ``root``), with the nodes' words on failure."""
    text = str(name or "").strip()
    if text.startswith("~"):
        raise ConfigError(f"the {what} {text!r} starts with '~'; models are kept inside the pix2pix "
                          "model folder.", _name_fix(what))
    try:
        return safe_join(root, text)
    except InputError as exc:
        raise ConfigError(f"the {what} is not usable: {exc.problem}", _name_fix(what)) from None


def _inside(path: Path, root: Path) -> bool:
    path = Path(os.path.normpath(os.path.abspath(path)))
    root = Path(os.path.normpath(os.path.abspath(root)))
    return path == root or root in path.parents


def model_path(name: str) -> Path:
    """The existing model file ``name`` in the model folder(s); ModelFileError when missing."""
    dirs = model_dirs()
    rel = PurePosixPath(str(name or "").strip().replace("\\", "/"))
    found, refused = None, None
    for root in dirs:
        try:
            candidate = _join(root, str(name or ""))
        except ConfigError as exc:
            refused = refused or exc
            continue
        if candidate.is_file():
            found = candidate
            break
    if refused is not None and found is None:
        raise refused
    fp = folder_paths()
    if found is None and fp is not None and hasattr(fp, "get_full_path"):
        full = fp.get_full_path(FOLDER, rel.as_posix())
        if full:  # a folder from extra_model_paths.yaml that get_folder_paths did not list
            found = Path(full)
            if not any(_inside(found.resolve(), root.resolve()) for root in dirs):
                raise ModelFileError(f"model file {rel.as_posix()!r} resolves outside the pix2pix model "
                                     "folder.", "choose a file from the list.")
    if found is None or not found.is_file():
        where = ", ".join(str(d) for d in dirs)
        raise ModelFileError(f"model file {rel.as_posix()!r} was not found in the pix2pix model folder ({where}).",
                             "put the .safetensors file there (or save one with 'Save Pix2Pix Model') and "
                             "refresh the node list.")
    return found


def save_path(name: str, if_exists: str = "increment") -> Path:
    """Where to write model ``name`` (``.safetensors`` added) inside the first model folder."""
    root = model_dirs()[0]
    rel = PurePosixPath(_join(root, name).relative_to(root.resolve()).as_posix())
    suffix = PurePosixPath(rel.name).suffix.lower()
    if suffix and suffix not in MODEL_EXTENSIONS and suffix in {".pt", ".pth", ".ckpt", ".bin", ".pkl"}:
        raise ConfigError(f"model name {rel.as_posix()!r} has extension {suffix}; models are written as "
                          ".safetensors.", "leave the extension out or use .safetensors.")
    if suffix != ".safetensors":
        rel = rel.with_name(rel.name + ".safetensors")
    target = _join(root, rel.as_posix())
    if target.exists():
        if if_exists == "error":
            raise ConfigError(f"model file {target} already exists.",
                              "choose another name, or set if_exists to overwrite or increment.")
        if if_exists == "increment":
            stem = target.name[: -len(".safetensors")]
            i = 1
            while (candidate := target.with_name(f"{stem}_{i:05d}.safetensors")).exists():
                i += 1
            target = candidate
    return target


# ----------------------------------------------------------------------------- data roots
def input_roots() -> list[Path] | None:
    """Folders dataset paths must stay in (ComfyUI's input folder), or None outside ComfyUI."""
    fp = folder_paths()
    getter = getattr(fp, "get_input_directory", None) if fp is not None else None
    if getter is None:
        return None
    return [Path(getter())]


def data_folder(path: str, side: str) -> Path:
    """Resolve a dataset folder: relative to ComfyUI's input folder and confined to it inside
    ComfyUI; as given (relative to the working directory) in plain Python."""
    text = str(path or "").strip()
    if not text:
        raise DatasetError(f"folder {side} is empty.", f"give the folder with the {side} images.")
    roots = input_roots()
    if roots is None:
        return Path(text).expanduser()
    fix = (f"put the image folders inside ComfyUI's input folder ({roots[0]}; a symlink placed there "
           "also works) and give their path relative to it, e.g. 'pix2pix/train_A'.")
    if any(p == ".." for p in text.replace("\\", "/").split("/")):
        raise DatasetError(f"folder {side} {text!r} contains '..', which is not allowed here.", fix)
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    if not any(_inside(candidate, r) for r in roots):
        raise DatasetError(f"folder {side} {text!r} is outside ComfyUI's input folder.", fix)
    return candidate
