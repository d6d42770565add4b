"""Longest Qt event-loop gap per user action in a real napari viewer (goal: <= 100 ms each).

    python benchmarks/gui_stalls.py            # unet_64 ngf 16, 64^2 patches, 60 steps
    python benchmarks/gui_stalls.py --quick    # tiny model, a few steps (a minute)
    python benchmarks/gui_stalls.py --json     # {"action": max_gap_ms, ...} (the busy run under "busy")
    python benchmarks/gui_stalls.py --quick --profile   # + where the GUI thread was during each stall

A QTimer ticks every 10 ms on the GUI thread; for each action the longest interval between two
ticks, minus the 10 ms period, is the stall a user would feel. The actions are what a user
clicks, through the docks' own methods: open each of the four docks, pair the nuclei sample,
train (with previews and the Discriminator following), load the saved model in Translate,
translate the 512x512 image, compute the discriminator maps. Each run is a fresh process
(first imports included), once alone and once next to one competing busy process (a Python
loop spinning on a core). Needs a display: without ``DISPLAY`` it re-runs itself under
``xvfb-run`` at 1366x768 (never QT_QPA_PLATFORM=offscreen with napari: vispy crashes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import _common  # noqa: F401
from _common import machine_line, table

GOAL_MS = 100.0


def measure(args) -> dict:
    import napari
    import numpy as np
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample("napari-pix2pix", "nuclei-2d")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    results: dict[str, float] = {}
    watchdog = StallSampler(ticks) if args.profile else None

    def spin(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    def action(name: str, run, until=lambda: True, settle: float = 0.3, timeout: float = 900.0) -> None:
        spin(settle)
        ticks.clear()
        ticks.append(time.perf_counter())
        if watchdog is not None:
            watchdog.begin(name)
        out = run()
        end = time.perf_counter() + timeout
        while not until():
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() > end:
                raise TimeoutError(name)
        spin(settle)  # what the action leaves queued (layers added, plots drawn) counts too
        gaps = np.diff(np.asarray(ticks)) * 1000.0
        results[name] = round(max(float(gaps.max()) - 10.0, 0.0), 1) if len(gaps) else float("nan")
        if watchdog is not None and len(gaps):
            i = int(gaps.argmax())
            watchdog.longest(name, ticks[i], ticks[i + 1])
        return out

    docks = {}

    def open_dock(name):
        docks[name] = viewer.window.add_plugin_dock_widget("napari-pix2pix", name, tabify=name != "Pair data")[1]

    for name in ("Pair data", "Train", "Discriminator", "Translate"):
        action(f"open {name}", lambda n=name: open_dock(n), until=lambda n=name: docks[n].idle)
    pair, train, disc, translate = (docks[n] for n in ("Pair data", "Train", "Discriminator", "Translate"))
    pair.layer_a.select("nuclei labels")
    pair.layer_b.select("nuclei")
    pair.crop.value = args.crop
    action("pair", pair.pair, until=lambda: pair.idle)
    folder = tempfile.mkdtemp(prefix="gui-stalls-")
    for key, value in {"generator": args.generator, "ngf": args.ngf, "ndf": args.ngf, "steps": args.steps,
                       "batch_size": 1, "preview_every": args.preview_every, "checkpoint_dir": folder}.items():
        getattr(train, key).value = value
    disc.follow.value = True
    action("train", train.start, until=lambda: train.idle)
    model = os.path.join(folder, "model.safetensors")
    action("load model", lambda: setattr(translate.model_path, "value", model), until=lambda: translate.idle)
    translate.input_layer.select("nuclei labels")
    translate.tile_form.set("tile", 256)
    action("translate 512^2", translate.run, until=lambda: translate.idle)
    disc.model_path.value = model
    disc.input_layer.select("nuclei labels")
    disc.target_layer.select("nuclei")
    action("D map", disc.compute, until=lambda: disc.idle)
    timer.stop()
    if watchdog is not None:
        watchdog.stop()
        results["_profile"] = watchdog.report()
    results["_steps_done"] = train.last_finished.step if train.last_finished else 0
    viewer.close()
    return results


class StallSampler:
    """A watchdog thread: while the GUI thread is late (no tick for more than ``late_ms``), it
    samples the GUI thread's stack every few ms; :meth:`report` gives the most frequent stacks
    per action (what held the event loop)."""

    def __init__(self, ticks: list, late_ms: float = 40.0, period_ms: float = 3.0):
        import collections
        import threading

        self.ticks, self.late, self.period = ticks, late_ms / 1000.0, period_ms / 1000.0
        self.main = threading.main_thread().ident
        self.samples: dict = collections.defaultdict(list)  # action -> [(time, stack)]
        self.windows: dict = {}  # action -> (start, end) of its longest gap
        self.action = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def begin(self, action: str) -> None:
        self.action = action

    def longest(self, action: str, start: float, end: float) -> None:
        self.windows[action] = (start, end)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        # faulthandler writes every thread's stack from C (safe while the GUI thread runs;
        # walking another thread's frames from Python crashes CPython 3.11)
        import faulthandler
        import tempfile

        main = f"Thread 0x{self.main:016x}"
        with tempfile.TemporaryFile("w+") as out:
            while not self._stop.wait(self.period):
                ticks = self.ticks
                if self.action is None or not ticks or time.perf_counter() - ticks[-1] < self.late:
                    continue
                out.seek(0)
                out.truncate()
                faulthandler.dump_traceback(out, all_threads=True)
                out.flush()
                out.seek(0)
                lines, inside = [], False
                for line in out.read().splitlines():
                    if line.startswith(("Thread 0x", "Current thread 0x")):
                        inside = main.split()[1] in line
                        continue
                    if inside and line.strip().startswith("File "):
                        path, _, rest = line.strip()[5:].partition(", line ")
                        lines.append(f"{os.path.basename(path.strip(chr(34)))}:{rest.replace(' in ', ' ')}")
                if lines:
                    self.samples[self.action].append((time.perf_counter(), tuple(reversed(lines[:16]))))

    def report(self, top: int = 3) -> dict:
        """Per action: the samples taken during its longest gap, as inclusive frame counts and
        the most frequent stacks."""
        import collections

        out = {}
        for action, samples in self.samples.items():
            start, end = self.windows.get(action, (0.0, float("inf")))
            counter = collections.Counter(stack for t, stack in samples if start <= t <= end)
            out[action] = {"samples": sum(counter.values()), "frames": _inclusive(counter),
                           "top": [[n, list(stack)] for stack, n in counter.most_common(top)]}
        return out


def _inclusive(counter) -> list:
    """Frames by the number of late samples they appear in (inclusive), outside this script."""
    import collections

    frames = collections.Counter()
    for stack, n in counter.items():
        for frame in set(stack):
            if not frame.startswith("gui_stalls.py"):
                frames[frame] += n
    return frames.most_common(25)


def child(args) -> None:
    busy = None
    if args.busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        results = measure(args)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print("RESULT " + json.dumps(results))


def run_child(argv: list[str], busy: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--no-xvfb", *argv] + (["--busy"] if busy else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"gui_stalls child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny model, a few steps")
    p.add_argument("--json", action="store_true", help='print {"action": max_gap_ms, ..., "busy": {...}}')
    p.add_argument("--no-busy", action="store_true", help="skip the run next to a busy process")
    p.add_argument("--no-xvfb", action="store_true", help="use the current display as it is")
    p.add_argument("--profile", action="store_true",
                   help="sample the GUI thread's stack while it is late and print the top stacks per action")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--busy", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not args.no_xvfb:
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            sys.exit("no DISPLAY and no xvfb-run: run under a display or install xvfb")
        os.environ.pop("QT_QPA_PLATFORM", None)
        cmd = [xvfb, "-a", "-s", "-screen 0 1366x768x24", sys.executable, __file__, "--no-xvfb", *argv]
        sys.exit(subprocess.call(cmd))
    args.generator, args.ngf, args.crop, args.steps, args.preview_every = "unet_64", 16, 64, 60, 10
    if args.quick:
        args.generator, args.ngf, args.crop, args.steps, args.preview_every = "unet_32", 4, 32, 6, 2
    if args.child:
        child(args)
        return
    forward = [a for a in argv if a in ("--quick", "--profile")]
    load = os.getloadavg()[0]
    alone = run_child(forward, busy=False)
    busy = {} if args.no_busy else run_child(forward, busy=True)
    steps = alone.pop("_steps_done", 0)
    busy.pop("_steps_done", None)
    for label, run in (("alone", alone), ("with 1 busy process", busy)):
        profile = run.pop("_profile", None)
        if profile:
            print(f"--- where the GUI thread was while late ({label}) ---", file=sys.stderr)
            for action, info in profile.items():
                print(f"[{action}] {info['samples']} samples during its longest gap", file=sys.stderr)
                for frame, n in info["frames"]:
                    print(f"  {n:5d}  {frame}", file=sys.stderr)
                for n, stack in info["top"]:
                    print(f"  {n} x " + " > ".join(stack[-8:]), file=sys.stderr)
    if args.json:
        print(json.dumps({**alone, **({"busy": busy} if busy else {})}))
        return
    print(machine_line() + f"; load average {load:.2f} at start")
    rows = [[name, ms, busy.get(name, ""), "ok" if max(ms, busy.get(name, 0) or 0) <= GOAL_MS else "over"]
            for name, ms in alone.items()]
    title = (f"Longest event-loop stall per action (ms; QTimer every 10 ms) in a napari viewer at 1366x768 on "
             f"{os.environ.get('DISPLAY')}; training {args.generator} ngf {args.ngf}, {args.crop}^2 patches, "
             f"{steps} steps, previews every {args.preview_every}; goal <= {GOAL_MS:.0f} ms")
    print(table(["action", "alone", "with 1 busy process", f"<= {GOAL_MS:.0f} ms"], rows, title))


if __name__ == "__main__":
    main()
