"""Honest dependencies: every third-party module the package imports is declared in
pyproject.toml (core or an extra), and nothing declared in the core list goes unused."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DIST = {"PIL": "pillow", "skimage": "scikit-image", "yaml": "pyyaml", "PyQt6": "pyqt6", "qtpy": "qtpy"}
# provided by the host application (ComfyUI), or optional plugins imported under try/except
HOST = {"comfy", "folder_paths", "server", "comfy_execution", "nodes", "comfy_api", "napari_workflows"}


def _declared() -> tuple[set[str], set[str]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs):
        out = set()
        for r in reqs:
            name = r.split(";")[0].split("[")[0]
            for sep in "<>=!~ ":
                name = name.split(sep)[0]
            out.add(name.strip().lower())
        return out

    extras = set()
    for reqs in project.get("optional-dependencies", {}).values():
        extras |= names(reqs)
    return names(project["dependencies"]), extras


def _imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names)
    return {m for m in found if m not in stdlib and m not in HOST and m != "napari_pix2pix" and m != "__future__"}


def test_every_import_is_declared():
    core, extras = _declared()
    missing = sorted(m for m in _imports(ROOT / "napari_pix2pix") | _imports(ROOT / "nodes")
                     if DIST.get(m, m).lower().replace("_", "-") not in core | extras)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_nothing_unused_in_the_core_list():
    core, _ = _declared()
    used = {DIST.get(m, m).lower().replace("_", "-") for m in _imports(ROOT / "napari_pix2pix") | _imports(ROOT / "nodes")}
    assert not sorted(core - used), f"declared but never imported: {sorted(core - used)}"
