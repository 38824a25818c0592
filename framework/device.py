"""Device choice in one place: samplers and metrics never pick a device themselves."""

from __future__ import annotations

import torch

from aebench.errors import AebenchError


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> the first CUDA GPU when present, else the CPU; an unavailable device is an error."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AebenchError(f"Unknown device '{name}'; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AebenchError(f"Device '{name}' asked for but no CUDA GPU is available; use --device cpu or auto.")
    return device


def describe_device(device: torch.device) -> dict[str, str | None]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "gpu": gpu}
