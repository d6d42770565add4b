"""Saving: what a model file holds besides the state (the data's normalisation), and the
refusal to write a non-finite tensor."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TrainingError

FIX = ("lower the learning rate, check the data for NaN/inf or extreme values, try precision fp32, "
       "or set nan_policy='skip' to skip bad batches.")


def data_description(dataset) -> dict:
    """The normalisation and label flags of both sides, and where the data came from."""
    data = {}
    for side in ("a", "b"):
        norm = getattr(dataset, f"norm_{side}", None)
        if norm is not None:
            data[f"norm_{side}"] = norm.to_dict()
        data[f"{side}_is_labels"] = bool(getattr(dataset, f"{side}_is_labels", False))
    data["source"] = getattr(dataset, "source", {}) or {}
    data["task"] = data["source"].get("task", "translate")  # see napari_pix2pix.tasks (issue 18)
    return data


def save_finite(path, ckpt) -> Path:
    """Write ``ckpt`` atomically, or refuse (TrainingError naming the tensors) when any is NaN/inf."""
    from ..checkpoint import save_checkpoint

    bad = nonfinite_tensors(ckpt)
    if bad:
        raise TrainingError(f"not saving {Path(path).name} at step {ckpt.step}: {len(bad)} tensor(s) are NaN or "
                            f"infinite ({', '.join(bad[:4])}); the file on disk was left as it was.", FIX)
    return save_checkpoint(path, ckpt)


def nonfinite_tensors(ckpt) -> list[str]:
    """Names of floating-point tensors in a checkpoint that hold NaN or inf."""
    bad = []
    parts = {"generator": ckpt.generator, "discriminator": ckpt.discriminator,
             "generator_raw": getattr(ckpt, "generator_raw", {}) or {}}
    for opt_name in ("optimizer_g", "optimizer_d"):
        state = getattr(ckpt, opt_name) or {}
        parts[opt_name] = {f"{i}/{k}": v for i, st in state.get("state", {}).items() for k, v in st.items()}
    for prefix, tensors in parts.items():
        for key, value in tensors.items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                bad.append(f"{prefix}/{key}")
    return bad

