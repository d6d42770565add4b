"""Paired data: ``PairSpec -> load -> validate -> build_dataset`` (:func:`pair`, see
:mod:`.pipeline`), normalisation, patch sampling and augmentation.

Importing this package does not import torch: ``PatchSampler``, ``validation_patches``
and ``PairAugment`` (which need torch and kornia) are loaded on first access.
"""

from __future__ import annotations

import importlib

from .normalize import Normalization, check_finite, default_normalization, fit_normalization
from .pipeline import pair
from .spec import PairSpec
from .sources import (
    Pair,
    PairedDataset,
    from_ab_file,
    from_ab_folder,
    from_arrays,
    from_channels,
    from_files,
    from_folders,
    from_paths,
    from_spec,
    looks_like_labels,
    write_ab,
)
from .validate import (
    Mismatch,
    PairingReport,
    check_model_channels,
    validate_ab_folder,
    validate_arrays,
    validate_folders,
)

_LAZY = {
    "PatchSampler": ".sampling",
    "validation_patches": ".sampling",
    "foreground_mask": ".sampling",
    "PairAugment": ".augment",
}

__all__ = [
    "Mismatch", "Normalization", "Pair", "PairAugment", "PairSpec", "PairedDataset", "PairingReport", "PatchSampler",
    "check_finite", "check_model_channels", "default_normalization", "fit_normalization", "foreground_mask",
    "from_ab_file",
    "from_ab_folder", "from_arrays", "from_channels", "from_files", "from_folders", "from_paths", "from_spec",
    "looks_like_labels", "pair", "validate_ab_folder", "validate_arrays", "validate_folders", "validation_patches",
    "write_ab",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
