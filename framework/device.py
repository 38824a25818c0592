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


# -- fast inference on accelerators (all opt-in: the defaults keep float32 numbers comparable) --------

PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(device: torch.device | str, precision: str = "fp32"):
    """A context that runs eligible ops (convolutions, matmuls) in `precision`: 'fp32' (no change),
    'bf16' or 'fp16' (CUDA only). Lower precision is faster on GPUs but moves FID by a little; only
    compare numbers made with the same precision."""
    from contextlib import nullcontext

    device = torch.device(device)
    if precision not in PRECISIONS:
        raise AebenchError(f"Unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise AebenchError("precision fp16 needs a CUDA device; use bf16 on the CPU or fp32.")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def to_device(batch: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """Copy a CPU batch to `device`; on CUDA through pinned memory, asynchronously."""
    device = torch.device(device)
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def use_channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """Store the module's 4-d weights channels-last (NHWC), which cuDNN's fastest convolutions prefer.
    Done once per module; numbers stay the same up to float rounding."""
    if not getattr(module, "_aebench_channels_last", False):
        module.to(memory_format=torch.channels_last)
        try:
            module._aebench_channels_last = True
        except (AttributeError, RuntimeError):  # TorchScript modules may refuse new attributes
            pass
    return module
