#!/usr/bin/env bash
# Set up (including Xvfb for the napari tests, via apt when run as root) and run the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v Xvfb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing Xvfb and the X/Qt libraries napari needs (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-image0 \
      libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-cursor0 libegl1 libgl1 libfontconfig1 \
      libdbus-1-3 >/dev/null
  else
    echo "setup: Xvfb is missing; install it (apt-get install xvfb) or the napari tests will be skipped" >&2
  fi
fi
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
unset QT_QPA_PLATFORM  # offscreen crashes vispy; pytest-xvfb provides the display
export PYTHONWARNINGS="ignore::DeprecationWarning"
exec "$PY" -m pytest -p no:cacheprovider "$@"
