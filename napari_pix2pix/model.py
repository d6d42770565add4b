"""A trained model as the faces see it: generator (+ discriminator), configuration and the data
normalisation it was trained with. Load it from a file, translate with it, save it again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .checkpoint import Checkpoint, load_checkpoint, load_state, save_checkpoint
from .config import ModelConfig


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Pix2PixModel:
    """Generator and discriminator with their :class:`ModelConfig` and normalisation.

    Use :meth:`load` for files; :meth:`from_checkpoint` for in-memory training results (the
    graph nodes pass these around without touching disk).
    """

    def __init__(self, checkpoint: Checkpoint, device="cpu", path: str | os.PathLike | None = None):
        import torch

        from .models import build_discriminator, build_generator

        self.checkpoint = checkpoint
        self.config: ModelConfig = checkpoint.model
        self.path = str(path) if path else None
        self.device = torch.device(device)
        where = self.path or "model"
        from .limits import check_architecture

        check_architecture(self.config, Path(where).name)  # before anything is allocated
        self.generator = build_generator(self.config, init=False)
        load_state(self.generator, checkpoint.generator, "generator", where)
        self.generator.to(self.device).eval()
        self.discriminator = None
        if checkpoint.discriminator:
            self.discriminator = build_discriminator(self.config, init=False)
            load_state(self.discriminator, checkpoint.discriminator, "discriminator", where)
            self.discriminator.to(self.device).eval()
        self._sha256 = None

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike, device="cpu") -> "Pix2PixModel":
        """Load a napari-pix2pix ``.safetensors`` model file (see :mod:`napari_pix2pix.checkpoint`)."""
        from .devices import resolve_device

        return cls(load_checkpoint(path), resolve_device(device) if isinstance(device, str) else device, path)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, device="cpu") -> "Pix2PixModel":
        return cls(ckpt, device)

    def to(self, device) -> "Pix2PixModel":
        import torch

        self.device = torch.device(device)
        self.generator.to(self.device)
        if self.discriminator is not None:
            self.discriminator.to(self.device)
        return self

    # ------------------------------------------------------------------------- properties
    @property
    def step(self) -> int:
        return self.checkpoint.step

    @property
    def sha256(self) -> str | None:
        if self._sha256 is None and self.path and Path(self.path).is_file():
            self._sha256 = file_sha256(self.path)
        return self._sha256

    def normalization(self, side: str):
        """The :class:`~napari_pix2pix.data.normalize.Normalization` of side ``'a'`` or ``'b'``,
        or None when the file has none (imported reference models: dtype-range mapping)."""
        data = (self.checkpoint.data or {}).get(f"norm_{side}")
        if not data:
            return None
        from .data.normalize import Normalization

        return Normalization.from_dict(data)

    def normalizations(self, dtype_a, dtype_b=None):
        """``(norm_a, norm_b)``: the stored normalisations, or a dtype-range mapping for files that
        have none (imported reference models: uint8 0..255, floats 0..1). ``dtype_b`` defaults to
        ``dtype_a``."""
        from .data.normalize import default_normalization

        norm_a = self.normalization("a") or default_normalization(dtype_a, self.config.in_channels)
        norm_b = self.normalization("b") or default_normalization(
            dtype_a if dtype_b is None else dtype_b, self.config.out_channels)
        return norm_a, norm_b

    @property
    def task(self) -> str:
        """``translate`` or ``colorize`` (see :mod:`napari_pix2pix.tasks`); older files: translate."""
        from .tasks import task_of

        return task_of(self.checkpoint.data or {})

    def is_labels(self, side: str) -> bool:
        return bool((self.checkpoint.data or {}).get(f"{side}_is_labels", False))

    def info(self) -> dict:
        """Architecture, parameter counts, receptive field and training metadata (JSON-safe)."""
        import torch

        from .models import build_discriminator, count_parameters, geometry

        if self.discriminator is not None:
            disc = self.discriminator
        else:  # the file has none: its geometry only, on the meta device (allocates nothing)
            with torch.device("meta"):
                disc = build_discriminator(self.config, init=False)
        geo = geometry(disc)
        cfg = self.config
        training = self.checkpoint.training
        return {
            "file": self.path,
            "sha256": self.sha256,
            "task": self.task,
            "generator": cfg.generator,
            "in_channels": cfg.in_channels,
            "out_channels": cfg.out_channels,
            "ngf": cfg.ngf,
            "ndf": cfg.ndf,
            "norm": cfg.norm,
            "dropout": cfg.dropout,
            "unet_skips": cfg.unet_skips,
            "discriminator": cfg.discriminator,
            "discriminator_layers": cfg.discriminator_layers,
            "parameters": count_parameters(self.generator),
            "discriminator_parameters": count_parameters(self.discriminator) if self.discriminator else 0,
            "receptive_field": "whole image" if geo.global_pool else geo.rf,
            "size_multiple": cfg.size_multiple,
            "steps": self.step,
            "trained_on": (self.checkpoint.data or {}).get("source", {}),
            "normalization": {k: v for k, v in (self.checkpoint.data or {}).items() if k.startswith("norm_")},
            "training": training.to_dict() if training is not None else None,
            "metrics": self.checkpoint.metrics,
            "library_version": self.checkpoint.metadata.get("library_version"),
            "imported_from": self.checkpoint.metadata.get("imported_from"),
        }

    # ------------------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (current weights, with optimizer/RNG state when it has them) atomically."""
        self.checkpoint.generator = self.generator.state_dict()
        if self.discriminator is not None:
            self.checkpoint.discriminator = self.discriminator.state_dict()
        out = save_checkpoint(path, self.checkpoint)
        self.path, self._sha256 = str(out), None
        return out
