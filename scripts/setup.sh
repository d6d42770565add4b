#!/usr/bin/env bash
# Creates .venv (once) and installs napari-pix2pix with everything the demo and the tests need.
# torch is pinned to 2.13.0 (CPU build) here when no torch is installed yet; users installing the
# package themselves get the range from pyproject.toml.
# Usage: source scripts/setup.sh   (sets PY to the environment's python)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PIX2PIX_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "setup: installing torch 2.13.0 (CPU)"
  "$PY" -m pip install -q "torch==2.13.0"
fi
stamp="$VENV/.napari-pix2pix-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "setup: installing napari-pix2pix and its extras (napari, dask, nodes, test, onnx, bioimageio)"
  "$PY" -m pip install -q -e "$ROOT[napari,dask,nodes,test,onnx,bioimageio]"
  touch "$stamp"
fi
export PY
