#!/usr/bin/env bash
# The main job: set up, train ~60 s on the bundled nuclei pair, translate, write demo-output/demo.png;
# with a display, napari then opens with the sample and the widgets docked. Extra args go to `demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$PY" -m napari_pix2pix demo "$@"
