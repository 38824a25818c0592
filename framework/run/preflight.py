"""Checks that need the model or the data but no work: run as soon as the latent dimension N and the
training-set size are known, before any encoding, fitting or decoding, so a run that cannot succeed
stops in seconds with exit code 2 instead of failing half-way (or being recorded as a failed sampler).

- sampler options that exceed the latent space (`plane_paths.axes` beyond N, `pca.k` > N, a `line`
  endpoint `train:<index>` beyond the training set): `Sampler.check_space`;
- sample counts that cannot fit in memory: every sampler's latents, their re-encodings, the decoded
  images and their features are held at once for one sampler and seed.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

from aebench.errors import AebenchError, OptionError

# bytes per latent component held per sample: the sampler's float64 draw, its float32 copy and the
# float32 re-encoding
LATENT_BYTES_PER_COMPONENT = 8 + 4 + 4


class ResourceError(AebenchError):
    """A run that needs more memory than the machine has."""


def check_sampler_space(samplers: Sequence[Any], latent_dim: int, n_train: int) -> None:
    """Build each SamplerSpec's sampler and check its options against N and the training-set size."""
    from aebench.plugins import get_registry

    registry = get_registry("sampler")
    for spec in samplers:
        sampler = registry.get(spec.name)(spec.options)
        try:
            sampler.check_space(int(latent_dim), int(n_train))
        except OptionError as exc:
            if spec.label != spec.name:  # name the suite entry: "sampler 'wide' (plane_paths): axis 40 ..."
                text = str(exc).removeprefix(f"{spec.name}: ")
                raise OptionError(f"sampler '{spec.label}' ({spec.name}): {text}") from None
            raise


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable, else free pages), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def bytes_per_sample(latent_dim: int, image_shape: Sequence[int] | None, feature_dim: int = 0) -> int:
    """Memory one sample holds while its sampler and seed are scored."""
    image = math.prod(image_shape) if image_shape else 0  # uint8 pixels
    return LATENT_BYTES_PER_COMPONENT * int(latent_dim) + int(image) + 4 * int(feature_dim)


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} PB"  # pragma: no cover


def _round_down(value: int) -> int:
    """Two significant digits, rounded down (a readable suggestion)."""
    if value < 100:
        return max(1, value)
    scale = 10 ** (len(str(value)) - 2)
    return value // scale * scale


def check_memory(n: int, latent_dim: int, image_shape: Sequence[int] | None, feature_dim: int = 0,
                 available: int | None = None, n_latent: int | None = None) -> None:
    """Refuse a sample count whose latents, decoded images and features cannot fit in memory. `n_latent`
    latent points (default n) are drawn, of which n are decoded."""
    available = available_memory() if available is None else available
    if available is None:
        return
    extra = max(0, int(n_latent or n) - int(n))  # latent points that are never decoded
    if extra * LATENT_BYTES_PER_COMPONENT * int(latent_dim) > available:
        raise ResourceError(
            f"--n-latent {n_latent} needs about {human_bytes(extra * LATENT_BYTES_PER_COMPONENT * latent_dim)} of "
            f"memory for one sampler's latent points but {human_bytes(available)} is available; lower --n-latent.")
    available -= extra * LATENT_BYTES_PER_COMPONENT * int(latent_dim)
    per_sample = bytes_per_sample(latent_dim, image_shape, feature_dim)
    needed = int(n) * per_sample
    if needed <= available:
        return
    parts = [f"{latent_dim} latent components"]
    if image_shape:
        parts.append("images " + "x".join(str(int(s)) for s in image_shape))
    if feature_dim:
        parts.append(f"{feature_dim} features")
    raise ResourceError(
        f"--n {n} needs about {human_bytes(needed)} of memory for one sampler's samples ({', '.join(parts)}: "
        f"{human_bytes(per_sample)} each) but {human_bytes(available)} is available; use --n "
        f"{_round_down(available // per_sample // 2)} or less (half of what fits, leaving room for the metrics)."
    )


def feature_dim_of(config: Any) -> int:
    """Feature width of the configured extractors (summed: a sample keeps each one's features) when image
    metrics are on, else 0."""
    if not config.needs_images:
        return 0
    from aebench.plugins import get_registry

    registry = get_registry("feature extractor")
    return sum(int(getattr(registry.get(name), "num_features", 0) or 0) for name in config.judges)


def check_run(config: Any, latent_dim: int, n_train: int, image_shape: Sequence[int] | None) -> None:
    """Every model-dependent check of a run: sampler options against N and the training set, then memory."""
    check_sampler_space(config.samplers, latent_dim, n_train)
    check_memory(int(config.n), latent_dim, image_shape, feature_dim_of(config), n_latent=config.n_latent)
