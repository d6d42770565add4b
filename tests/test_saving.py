"""The save path of a model file: written straight from the caller's tensors (no copies where
none are needed), the one-sum finite screen, and weights-only snapshots of a trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_pix2pix.checkpoint import (Checkpoint, NonFiniteStateError, _non_finite, _writable, load_checkpoint,
                                       save_checkpoint)
from tests._helpers import tiny_model, tiny_train


def _ckpt(**kw) -> Checkpoint:
    from napari_pix2pix.models import build_discriminator, build_generator

    model = tiny_model()
    gen = {k: v.clone() for k, v in build_generator(model).state_dict().items()}
    disc = {k: v.clone() for k, v in build_discriminator(model).state_dict().items()}
    return Checkpoint(model=model, step=3, generator=gen, discriminator=disc, **kw)


def test_cpu_tensors_are_written_without_a_copy_and_shared_memory_is_copied_once():
    live = torch.arange(12, dtype=torch.float32)
    out = _writable({"a": live, "b": live, "c": live[::2], "d": live.view(3, 4)[1]})
    assert out["a"].data_ptr() == live.data_ptr()  # the tensor itself
    assert out["b"].data_ptr() != live.data_ptr() and torch.equal(out["b"], live)  # a second name: a copy
    assert out["c"].is_contiguous() and torch.equal(out["c"], live[::2])
    assert torch.equal(out["d"], live[4:8]) and out["d"].untyped_storage().nbytes() == 16


def test_a_checkpoint_whose_dicts_share_tensors_saves_and_loads(tmp_path):
    ckpt = _ckpt()
    ckpt.generator_raw = ckpt.generator  # the same tensors under two prefixes
    path = save_checkpoint(tmp_path / "m.safetensors", ckpt)
    back = load_checkpoint(path)
    for key, value in ckpt.generator.items():
        assert torch.equal(back.generator[key], value) and torch.equal(back.generator_raw[key], value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_the_finite_screen_finds_nan_and_inf_and_passes_large_finite_values(dtype):
    big = torch.full((1000,), torch.finfo(dtype).max / 2, dtype=dtype)  # its sum overflows: checked element-wise
    assert _non_finite({"big": big, "ints": torch.arange(3), "empty": torch.zeros(0, dtype=dtype)}) == []
    for bad in (float("nan"), float("inf"), -float("inf")):
        t = torch.zeros(1000, dtype=dtype)
        t[int(np.random.default_rng(0).integers(1000))] = bad
        assert _non_finite({"ok": big, "bad": t}) == ["bad"]


def test_a_refused_save_leaves_the_file_byte_for_byte(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", _ckpt())
    before = path.read_bytes()
    bad = _ckpt()
    next(iter(bad.discriminator.values()))[0] = float("nan")
    with pytest.raises(NonFiniteStateError, match="NaN or infinite"):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before


def test_a_weights_only_snapshot_shares_the_live_tensors_and_a_copy_does_not(tmp_path):
    from napari_pix2pix.data.sources import from_arrays
    from napari_pix2pix.training import Trainer
    from napari_pix2pix.training.saving import snapshot

    rng = np.random.default_rng(0)
    a = rng.random((48, 48), dtype=np.float32)
    trainer = Trainer(tiny_model(), tiny_train(steps=2, batch_size=1), from_arrays([a], [a * 0.5]))
    trainer.run()
    live = snapshot(trainer, optimizer=False)
    assert live.optimizer_g is None and live.optimizer_d is None and live.step == 2
    name, param = next(iter(trainer.generator.state_dict().items()))
    assert live.generator[name].data_ptr() == param.data_ptr()
    full = trainer.checkpoint()  # the engine's default: copies, optimizer included
    assert full.optimizer_g and full.generator[name].data_ptr() != param.data_ptr()
    save_checkpoint(tmp_path / "w.safetensors", live)
    back = load_checkpoint(tmp_path / "w.safetensors")
    assert back.optimizer_g is None and torch.equal(back.generator[name], param)
