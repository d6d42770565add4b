"""Device selection: ``auto`` picks cuda, then mps, then cpu."""

from __future__ import annotations

from .errors import ConfigError


def available_devices() -> dict[str, bool]:
    """Which accelerators this torch build and machine offer, e.g. ``{'cpu': True, 'cuda': False, 'mps': False}``."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}


def resolve_device(name: str = "auto"):
    """A :class:`torch.device` for ``auto``/``cpu``/``cuda``/``cuda:N``/``mps``; an error naming what
    exists when the request cannot be met."""
    import torch

    found = available_devices()
    if name in (None, "", "auto"):
        for kind in ("cuda", "mps"):
            if found[kind]:
                return torch.device(kind)
        return torch.device("cpu")
    kind = str(name).split(":")[0]
    if kind not in found:
        raise ConfigError(f"device {name!r} is unknown.", "use auto, cpu, cuda or mps.")
    if not found[kind]:
        have = ", ".join(k for k, v in found.items() if v)
        raise ConfigError(f"device {name!r} is not available on this machine (found: {have}).",
                          "use --device auto or one of the devices found.")
    return torch.device(name)


def describe_devices() -> str:
    """One line for UIs: e.g. ``cpu, cuda (NVIDIA H100)``."""
    import torch

    found = available_devices()
    parts = ["cpu"]
    if found["cuda"]:
        parts.append(f"cuda ({torch.cuda.get_device_name(0)})")
    if found["mps"]:
        parts.append("mps")
    return ", ".join(parts)
