"""Keeping the caller's random state: training seeds torch globally, which must not change the
randomness of whatever runs next in the same process (other nodes of a ComfyUI graph, a napari
session, a notebook).

>>> import random
>>> random.seed(1); before = random.random(); random.seed(1)
>>> with preserved_rng():
...     random.seed(99)
>>> random.random() == before
True
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np


def _cuda_states():
    """Per-device CUDA generator states, or None when CUDA was never initialised (reading them
    would initialise it, and a training that did not use CUDA did not touch them)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    return torch.cuda.get_rng_state_all()


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Save the global torch (CPU and, when initialised, every CUDA device), numpy and ``random``
    states on entry and put them back on exit, whatever happens inside (errors, cancels)."""
    import torch

    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = _cuda_states()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
