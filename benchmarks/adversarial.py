"""Time and peak memory of every crafted-input case of tests/test_adversarial.py (issue 17:
each must fail in one line, under 5 s and 500 MB peak RSS). Wall-clock limits live here, not
in the tests.

    python benchmarks/adversarial.py            # table; exit 1 when a case is over a limit
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECONDS, PEAK_MB = 5.0, 500


def main() -> int:
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, str(REPO / "tests" / "test_adversarial.py"), root],
                              capture_output=True, text=True, env=env, check=True)
    bad = 0
    print(f"{'case':40s} {'seconds':>8s} {'peak MB':>8s}  message")
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        over = r["seconds"] > SECONDS or r["peak_rss_mb"] > PEAK_MB or r["code"] != 1
        bad += over
        print(f"{r['name']:40s} {r['seconds']:8.2f} {r['peak_rss_mb']:8.0f}  {'OVER ' if over else ''}"
              f"{r['stderr'].strip()[:90]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
