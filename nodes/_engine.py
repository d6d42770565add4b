"""Make the ``napari_pix2pix`` engine importable for the node pack.

The normal case is an installed engine (``pip install napari-pix2pix`` or ``pip install -e``).
When it is not installed but this pack sits in its repository checkout (the repository cloned
into ``ComfyUI/custom_nodes/``, or ``nodes/`` symlinked there), the engine next to it is loaded
under its own name, ``napari_pix2pix``, without adding anything to ``sys.path``: putting the
repository on ``sys.path`` would also expose this folder as a top-level ``nodes`` module, which
is the name of ComfyUI's own core module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

ENGINE = "napari_pix2pix"


def sibling_engine_dir() -> Path | None:
    """``<checkout>/napari_pix2pix`` next to this pack (symlinks resolved), if present."""
    here = Path(__file__).resolve().parent
    candidate = here.parent / ENGINE
    return candidate if (candidate / "__init__.py").is_file() else None


def ensure_engine():
    """Return the ``napari_pix2pix`` module: the installed one, else the checkout's copy."""
    if ENGINE in sys.modules:
        return sys.modules[ENGINE]
    try:
        return importlib.import_module(ENGINE)
    except ImportError as exc:
        if exc.name not in (None, ENGINE):
            raise  # the engine is there but one of its own dependencies is missing
        folder = sibling_engine_dir()
        if folder is None:
            raise ImportError(
                "napari-pix2pix ComfyUI nodes: the napari_pix2pix engine is not installed. "
                "Fix: run `pip install napari-pix2pix` (or `pip install -e <repository>`) in the "
                "Python environment that runs ComfyUI.") from exc
    spec = importlib.util.spec_from_file_location(ENGINE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[ENGINE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(ENGINE, None)
        raise
    return module
