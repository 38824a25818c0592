"""The image side of a run: decode latents, re-encode images and extract features, each in batches of
its own size (`RunSetup.batch_size` for the AE, `RunSetup.feature_batch_size` for the extractor), on
the run's device and in the run's precision. Out of memory halves that batch size and retries
(`aebench.run.batching.with_backoff`); the smaller size is kept in the setup for the rest of the run.

Features stay on the run's device: the metrics that read them run there too.
"""

from __future__ import annotations

from typing import Any

import torch

from aebench.run.batching import with_backoff


def _note(setup: Any, what: str, quiet: bool):
    def note(size: int, exc: BaseException) -> None:
        setup.backoffs.append({"what": what, "batch_size": size, "error": f"{type(exc).__name__}: {str(exc)[:120]}"})
        if not quiet:
            from aebench.infra.console import err_console

            err_console.print(f"[yellow]Out of memory in {what}; retrying with batch size {size}[/yellow]")

    return note


def decode(setup: Any, latents: torch.Tensor, description: str | None = None, *, quiet: bool = True) -> torch.Tensor:
    """uint8 CPU images of `latents` decoded by the run's model."""
    from aebench.models.encoding import decode_latents

    images, setup.batch_size = with_backoff(
        lambda size: decode_latents(setup.model.module, latents, batch_size=size, device=setup.device,
                                    description=description, precision=setup.config.precision),
        setup.batch_size, what="decode", on_backoff=_note(setup, "decode", quiet))
    return images


def reencode(setup: Any, images: torch.Tensor, *, quiet: bool = True) -> torch.Tensor:
    """float32 CPU latents of `images` encoded by the run's model."""
    from aebench.models.encoding import encode_images

    latents, setup.batch_size = with_backoff(
        lambda size: encode_images(setup.model.module, images, batch_size=size, device=setup.device,
                                   precision=setup.config.precision),
        setup.batch_size, what="re-encode", on_backoff=_note(setup, "re-encode", quiet))
    return latents


def features(setup: Any, images: torch.Tensor, description: str | None = None, *, quiet: bool = True,
             extractor: Any = None) -> torch.Tensor:
    """float32 features [n, d] of uint8 `images` on the run's device, with a progress bar unless quiet, by
    `extractor` (one of the run's `aebench.run.setup.Extractor`s; default: the first)."""
    from aebench.feature_extractor import extract_features
    from aebench.infra.threads import recheck_threads

    recheck_threads()  # the heavy stage: with --threads auto, take the cores other processes left free now
    module = (extractor or setup.extractor).module

    def run(size: int) -> torch.Tensor:
        if quiet or description is None:
            return extract_features(module, images, size, setup.device, precision=setup.config.precision)
        from aebench.infra.console import progress_bar

        with progress_bar(transient=True) as bar:
            task = bar.add_task(description, total=images.shape[0])
            return extract_features(module, images, size, setup.device, precision=setup.config.precision,
                                    progress=lambda k: bar.advance(task, k))

    out, setup.feature_batch_size = with_backoff(run, setup.feature_batch_size, what="features",
                                                 on_backoff=_note(setup, "features", quiet))
    return out
