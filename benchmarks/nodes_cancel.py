"""What pressing Cancel on the Train Pix2Pix node costs: the time from ComfyUI's interrupt (raised
by the progress bar after the first step) to the node handing the interrupt back, with the
model written to the autosave file. Weights only (the default) against ``save_optimizer``.

    python benchmarks/nodes_cancel.py [--quick] [--preset auto paper]

Runs the node pack in plain Python with stand-ins for ComfyUI's ``comfy.utils`` and
``comfy.model_management`` (as tests/test_nodes.py does), on the CPU, with every other input at
the node's default. ``auto`` is the node's default preset (``quick-cpu`` on a CPU); ``paper`` is
unet_256 with 64 filters at 256 px (686 MB with the optimizer state). ``--quick``: preset none
with unet_32, 8 filters, 32 px (a smoke run).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import types

import _common  # noqa: F401
from _common import REPO, machine_line, table


class _Interrupt(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


def _pack(stamp: dict):
    import torch

    mm = types.ModuleType("comfy.model_management")
    mm.InterruptProcessingException = _Interrupt
    mm.get_torch_device = lambda: torch.device("cpu")
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total):
            pass

        def update(self, value):
            stamp["interrupt"] = time.perf_counter()
            raise _Interrupt()

        def update_absolute(self, *args, **kwargs):
            pass

    utils.ProgressBar = ProgressBar
    comfy = types.ModuleType("comfy")
    comfy.__path__ = []
    comfy.utils, comfy.model_management = utils, mm
    sys.modules.update({"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm})
    spec = importlib.util.spec_from_file_location("pix2pix_pack", REPO / "nodes" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "nodes")])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["pix2pix_pack"] = pack
    spec.loader.exec_module(pack)
    return pack.NODE_CLASS_MAPPINGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", nargs="+", default=["auto", "paper"],
                        help="node presets to measure (default: auto paper)")
    args = parser.parse_args()
    import torch

    os.environ["NAPARI_PIX2PIX_MODEL_DIR"] = tempfile.mkdtemp(prefix="pix2pix-cancel-")
    stamp: dict = {}
    nodes = _pack(stamp)
    image = torch.rand(1, 64 if args.quick else 286, 64 if args.quick else 286, 3)
    dataset, _ = nodes["Pix2PixPairImages"]().pair(images_a=image, images_b=image.clone())
    train = nodes["Pix2PixTrain"]
    inputs = {}
    for section in ("required", "optional"):
        for name, entry in train.INPUT_TYPES()[section].items():
            if len(entry) > 1 and "default" in entry[1]:
                inputs[name] = entry[1]["default"]
    runs = [("none", dict(generator="unet_32", crop=32, ngf=8, ndf=8))] if args.quick else \
        [(name, {}) for name in args.preset]
    rows = []
    for preset, extra in runs:
        for save_optimizer in (False, True):
            name = f"cancel_{preset}_{int(save_optimizer)}"
            kwargs = dict(inputs, dataset=dataset, preset=preset, device="cpu", autosave=name,
                          save_optimizer=save_optimizer, **extra)
            seconds = float("nan")
            try:
                train().train(**kwargs)
            except _Interrupt:
                seconds = time.perf_counter() - stamp["interrupt"]
            path = os.path.join(os.environ["NAPARI_PIX2PIX_MODEL_DIR"], name + ".safetensors")
            from napari_pix2pix.checkpoint import read_header

            model = json.loads(read_header(path)[1]["model"])
            rows.append([preset if preset != "auto" else "auto (default)",
                         f"{model['generator']} ngf {model['ngf']}",
                         "yes" if save_optimizer else "no (default)", f"{seconds:.2f}",
                         f"{os.path.getsize(path) / 1e6:.0f}"])
            os.unlink(path)
    print(machine_line())
    print(table(["preset", "generator", "optimizer state saved", "cancel cost (s)", "file (MB)"], rows,
                title="Train Pix2Pix node: Cancel after step 1 (CPU)"))


if __name__ == "__main__":
    main()
