"""Saving: what a model file holds besides the state (the data's normalisation), and the
refusal to write a non-finite tensor."""

from __future__ import annotations

from pathlib import Path


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
    """Write ``ckpt`` atomically, or refuse when any tensor is NaN/inf (the one check lives in
    :func:`~napari_pix2pix.checkpoint.save_checkpoint`: NonFiniteStateError, a TrainingError,
    naming the tensors; the file on disk is left as it was)."""
    from ..checkpoint import save_checkpoint

    return save_checkpoint(path, ckpt)


def snapshot(trainer, *, optimizer: bool = True, final: bool = False):
    """The trainer's state as a Checkpoint for a save that happens before its next step (or
    after its last): CPU tensors are the live ones, not copies (a state on another device is
    copied to the CPU once), and the optimizer states only with ``optimizer``. ``final``: the
    model the user gets (the best validated one with ``select_best``). The write itself
    (:func:`save_finite`) adds no copy, so a cancel costs one pass over the weights to check
    them and one to write them."""
    import dataclasses

    if final and trainer.config.select_best:
        best = trainer.validation.best_checkpoint(trainer)
        if best is not None:
            return best if optimizer else dataclasses.replace(best, optimizer_g=None, optimizer_d=None)
    return trainer.state.checkpoint(data_description(trainer.dataset), copy=False, optimizer=optimizer)
