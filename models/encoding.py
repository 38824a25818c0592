"""Batched encode/decode between uint8 images and float32 latents, for any Autoencoder.

Data and results stay on the CPU; only one batch at a time goes to the device, so memory is bounded
by `batch_size` whatever the number of images.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Iterator

import numpy as np
import torch

from aebench.errors import AebenchError


def _unwrap(model: Any) -> Any:
    """Accept a LoadedModel (it has `.module`) or any object with encode/decode/latent_dim."""
    return getattr(model, "module", model)


def _progress(description: str | None):
    if description is None:
        return nullcontext(None)
    from aebench.infra.console import progress_bar

    return progress_bar(transient=True)


def _batches(n: int, batch_size: int, description: str | None) -> Iterator[slice]:
    if batch_size < 1:
        raise AebenchError(f"batch_size must be >= 1, got {batch_size}; pass a positive batch size.")
    with _progress(description) as bar:
        task = bar.add_task(description, total=n) if bar is not None else None
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield slice(start, stop)
            if bar is not None:
                bar.advance(task, stop - start)


def encode_images(model: Any, images_uint8: torch.Tensor, batch_size: int = 256, device: str | torch.device = "cpu",
                  description: str | None = None, *, precision: str = "fp32") -> torch.Tensor:
    """Encode uint8 images [n, c, h, w] -> float32 CPU latents [n, N], one batch at a time on `device`
    in `precision` (see `aebench.infra.device.precision_mode`)."""
    from aebench.infra.device import precision_mode

    model = _unwrap(model)
    if not isinstance(images_uint8, torch.Tensor) or images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4:
        got = f"{images_uint8.dtype} {tuple(images_uint8.shape)}" if isinstance(images_uint8, torch.Tensor) else type(images_uint8).__name__
        raise AebenchError(f"encode_images needs a uint8 tensor [n, c, h, w], got {got}; pass the data set's images.")
    expected = getattr(model, "image_shape", None)
    if expected is not None and tuple(images_uint8.shape[1:]) != tuple(expected):
        raise AebenchError(
            f"Images of shape {tuple(images_uint8.shape[1:])} do not fit the model's {tuple(expected)}; "
            f"use the data set the model was trained on."
        )
    n, dim = images_uint8.shape[0], int(model.latent_dim)
    out = torch.empty(n, dim, dtype=torch.float32)
    with torch.inference_mode(), precision_mode(device, precision):
        for sl in _batches(n, batch_size, description):
            batch = images_uint8[sl].to(device).float().div_(255.0)
            z = model.encode(batch)
            if not isinstance(z, torch.Tensor) or tuple(z.shape) != (sl.stop - sl.start, dim):
                got = str(tuple(z.shape)) if isinstance(z, torch.Tensor) else type(z).__name__
                raise AebenchError(f"The model's encode returned {got}, expected ({sl.stop - sl.start}, {dim}); fix its encode.")
            out[sl] = z.detach().to("cpu", torch.float32)
    return out


def decode_latents(model: Any, latents: torch.Tensor | np.ndarray, batch_size: int = 256,
                   device: str | torch.device = "cpu", description: str | None = None, *,
                   precision: str = "fp32", channels_last: bool = False) -> torch.Tensor:
    """Decode latents [n, N] -> uint8 CPU images [n, c, h, w] (round(x * 255), clamped to 0..255).

    `precision` ('fp32' default with TF32 off, 'tf32', 'bf16'; see `aebench.infra.device.precision_mode`) and
    `channels_last` are opt-in GPU speed-ups; batches reach a GPU through pinned memory and come back
    as uint8."""
    from aebench.infra.device import precision_mode, to_device, use_channels_last

    model = _unwrap(model)
    if channels_last and isinstance(model, torch.nn.Module):
        use_channels_last(model)
    if isinstance(latents, np.ndarray):
        latents = torch.from_numpy(latents)
    if not isinstance(latents, torch.Tensor) or not latents.is_floating_point() or latents.ndim != 2:
        got = f"{latents.dtype} {tuple(latents.shape)}" if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise AebenchError(f"decode_latents needs a float tensor [n, N], got {got}; pass one latent vector per row.")
    dim = int(model.latent_dim)
    if latents.shape[1] != dim:
        raise AebenchError(
            f"Latents have {latents.shape[1]} components but the model's latent dimension is {dim}; "
            f"sample with the statistics of this model."
        )
    if not torch.isfinite(latents).all():
        raise AebenchError("Latents contain NaN or infinite values; fix the sampler that produced them.")
    n = latents.shape[0]
    out: torch.Tensor | None = None
    with torch.inference_mode(), precision_mode(device, precision):
        for sl in _batches(n, batch_size, description):
            x = model.decode(to_device(latents[sl].to(torch.float32), device))
            if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != sl.stop - sl.start:
                got = str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__
                raise AebenchError(f"The model's decode returned {got}, expected ({sl.stop - sl.start}, c, h, w); fix its decode.")
            expected = getattr(model, "image_shape", None)
            if expected is not None and tuple(x.shape[1:]) != tuple(expected):
                raise AebenchError(f"The model's decode returned images {tuple(x.shape[1:])}, but it declares "
                                   f"image_shape {tuple(expected)}; fix its decode.")
            if out is None:
                out = torch.empty((n, *x.shape[1:]), dtype=torch.uint8)
            elif x.shape[1:] != out.shape[1:]:
                raise AebenchError(f"The model's decode changed image shape between batches ({tuple(x.shape[1:])}); fix its decode.")
            out[sl] = x.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()
    if out is None:  # no latents: shape from the model if it says
        shape = tuple(getattr(model, "image_shape", ()) or ())
        if len(shape) != 3:
            raise AebenchError("decode_latents got zero latents and the model has no image_shape; pass at least one latent.")
        out = torch.empty((0, *shape), dtype=torch.uint8)
    return out
