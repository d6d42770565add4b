"""Test-only script run by tests/test_ddp.py under ``python -m torch.distributed.run``.

Every rank trains the same tiny model for a few steps on the bundled nuclei pair, then saves
its own generator and discriminator state (parameters and buffers) to ``<out>/rank<r>.pt``;
the trainer itself writes ``<out>/model.safetensors`` (rank 0 only).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _helpers import nuclei_2d, tiny_model, tiny_train  # noqa: E402

from napari_pix2pix.config import DataConfig  # noqa: E402
from napari_pix2pix.data.sources import from_arrays  # noqa: E402
from napari_pix2pix.training import StepEvent, Trainer  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    torch.set_num_threads(1)
    image, labels = nuclei_2d()
    dataset = from_arrays(labels, image, DataConfig())
    trainer = Trainer(tiny_model(), tiny_train(steps=steps, batch_size=2), dataset, out=out / "model.safetensors")
    seen = []
    for event in trainer.events():
        if isinstance(event, StepEvent):
            seen.append(event.step)
    rank = int(os.environ["RANK"])
    state = {**{f"G.{k}": v for k, v in trainer.generator.state_dict().items()},
             **{f"D.{k}": v for k, v in trainer.discriminator.state_dict().items()}}
    torch.save(state, out / f"rank{rank}.pt")
    first_batch = trainer.sampler.sample(torch.Generator().manual_seed(0))[0]
    torch.save(first_batch, out / f"batch{rank}.pt")
    (out / f"rank{rank}.json").write_text(json.dumps({
        "steps_seen": seen, "world_size": trainer.world_size, "step": trainer.step,
        "dist_initialized_after": torch.distributed.is_initialized()}))


if __name__ == "__main__":
    main()
