"""Device choice in one place: samplers and metrics never pick a device themselves."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from aebench.errors import AebenchError, did_you_mean


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> the first CUDA GPU when present, else the CPU; an unavailable device is an error."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AebenchError(f"Unknown device '{name}'.{did_you_mean(name, ('auto', 'cpu', 'cuda'))} "
                           f"Use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AebenchError(f"Device '{name}' asked for but no CUDA GPU is available; use --device cpu or auto.")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise AebenchError(f"Device '{name}' asked for but this machine has {count} CUDA GPU(s) "
                               f"(cuda:0 to cuda:{count - 1}); use one of those, or --device auto.")
    if device.type not in ("cpu", "cuda"):
        raise AebenchError(f"Device '{name}' is not supported; use auto, cpu, cuda or cuda:N.")
    return device


def describe_device(device: torch.device) -> dict[str, str | None]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "gpu": gpu}


# -- precision: float32 by default, faster formats opt-in -----------------------------------------------

PRECISIONS = ("fp32", "bf16", "fp16")  # what `autocast` takes
MODES = ("fp32", "tf32", "bf16")  # what `precision_mode` takes (bf16 for speed measurements only)
# The run setting `precision`. A precision is offered when it moves FID by less than 0.1%. bf16 is not:
# on the CPU it moved the default job's FIDs by 0.15% to 1.9% (decode and Inception in bf16, ORL).
# tf32 exists on CUDA only and could not be measured here; benchmarks/gpu_check.py measures it
# (fid_tf32_relative_change).
RUN_PRECISIONS = ("fp32", "tf32")
NOT_OFFERED = {"bf16": "bf16 moved FID by 0.15% to 1.9% when measured (more than the 0.1% a precision may move "
                       "it), so runs do not offer it; use fp32, or tf32 on a GPU"}


def check_precision(precision: str, device: torch.device | str | None = None) -> str:
    """Validate the run setting `precision` (for `device`, when known); returns it."""
    if precision in NOT_OFFERED:
        raise AebenchError(f"Precision '{precision}' is not offered: {NOT_OFFERED[precision]}.")
    if precision not in RUN_PRECISIONS:
        raise AebenchError(f"Unknown precision '{precision}'.{did_you_mean(precision, RUN_PRECISIONS)} "
                           f"Use one of {', '.join(RUN_PRECISIONS)} (default fp32).")
    if precision == "tf32" and device is not None and torch.device(device).type != "cuda":
        raise AebenchError("precision tf32 exists on CUDA GPUs only; use fp32 on the CPU.")
    return precision


def _tf32_backends() -> list[Any]:
    """The backends that carry an fp32_precision flag (torch >= 2.9); empty on older torch."""
    b = torch.backends
    found = [getattr(b.cuda, "matmul", None), getattr(getattr(b, "cudnn", None), "conv", None),
             getattr(getattr(b, "cudnn", None), "rnn", None)]
    return [x for x in found if x is not None and hasattr(x, "fp32_precision")]


@contextmanager
def ieee_matmul() -> Iterator[None]:
    """float32 matrix products in true float32 (no TF32 or bf16 shortcuts), inside or outside
    `precision_mode`, restored afterwards. Uses the per-backend flags where torch has them: mixing them with
    the legacy `set_float32_matmul_precision` makes torch refuse to read either."""
    import torch.backends.mkldnn  # noqa: F401  (its `matmul` flag exists once the module is imported)

    backends = [x for x in (getattr(torch.backends.cuda, "matmul", None),
                            getattr(torch.backends.mkldnn, "matmul", None))
                if x is not None and hasattr(x, "fp32_precision")]
    if not backends:  # pragma: no cover - torch < 2.9: the legacy flag
        before_legacy = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(before_legacy)
        return
    before = [x.fp32_precision for x in backends]
    for x in backends:
        x.fp32_precision = "ieee"
    try:
        yield
    finally:
        for x, v in zip(backends, before):
            x.fp32_precision = v


@contextmanager
def precision_mode(device: torch.device | str, precision: str = "fp32") -> Iterator[None]:
    """Run decode and feature extraction in the run's `precision`:

    - 'fp32' (default): true float32 everywhere. TF32 is switched OFF for matrix products and cuDNN
      convolutions (PyTorch leaves it on for cuDNN convolutions by default, which would make
      "float32" Inception numbers TF32 on recent GPUs);
    - 'tf32': TF32 matrix products and convolutions (CUDA only);
    - 'bf16': autocast to bfloat16 (for speed measurements: runs do not offer it, see RUN_PRECISIONS).

    The TF32 flags are restored afterwards. Record the precision with every number it produced."""
    if precision not in MODES:
        raise AebenchError(f"Unknown precision '{precision}'.{did_you_mean(precision, MODES)} Use one of {', '.join(MODES)}.")
    backends = _tf32_backends()
    value = "tf32" if precision == "tf32" else "ieee"
    if backends:
        before = [x.fp32_precision for x in backends]
        for x in backends:
            x.fp32_precision = value
    else:  # pragma: no cover - torch < 2.9: the legacy flags
        before = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        with autocast(device, "bf16" if precision == "bf16" else "fp32"):
            yield
    finally:
        if backends:
            for x, v in zip(backends, before):
                x.fp32_precision = v
        else:  # pragma: no cover
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def autocast(device: torch.device | str, precision: str = "fp32"):
    """A context that runs eligible ops (convolutions, matmuls) in `precision`: 'fp32' (no change),
    'bf16' or 'fp16' (CUDA only). Lower precision is faster on GPUs but moves FID by a little; only
    compare numbers made with the same precision."""
    from contextlib import nullcontext

    device = torch.device(device)
    if precision not in PRECISIONS:
        raise AebenchError(f"Unknown precision '{precision}'.{did_you_mean(precision, PRECISIONS)} "
                           f"Use one of {', '.join(PRECISIONS)}.")
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
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch accepts it
        try:
            module._aebench_channels_last = True  # type: ignore[assignment]
        except (AttributeError, RuntimeError):  # TorchScript modules may refuse new attributes
            pass
    return module
