"""napari-pix2pix: Pix2Pix image-to-image translation for napari, node graphs and the shell.

The package root stays cheap to import (no torch): public names resolve lazily on first use.

>>> import napari_pix2pix as p2p
>>> model = p2p.Pix2PixModel.load("model.safetensors")          # doctest: +SKIP
>>> out = p2p.translate(model, image)                            # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ModelConfig": "config", "TrainConfig": "config", "DataConfig": "config", "NormConfig": "config",
    "AugmentConfig": "config", "TileConfig": "config",
    "Pix2PixError": "errors", "InputError": "errors", "DatasetError": "errors", "ModelFileError": "errors",
    "ConfigError": "errors", "TrainingError": "errors",
    "Pix2PixModel": "model",
    "Trainer": "training",
    "translate": "inference",
    "Predictor": "predict",
    "export_model": "export",
    "discriminator_maps": "discriminator_map",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "build_generator": "models", "build_discriminator": "models",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_pix2pix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
