"""aebench: benchmark strategies for sampling the latent space of a trained standard autoencoder.

The plugin author's API lives here, as one import: ``from aebench import hookimpl, Sampler, Samples,
Region, Metric, MetricValue, Column, option, LatentStats, ...``. Names other than ``hookimpl`` are
imported on first use (module ``__getattr__``), so ``import aebench`` stays cheap; the modules they come
from (``aebench.sampler``, ``aebench.options``, ...) remain importable as before.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("aebench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from aebench.hookspecs import hookimpl

# public name -> the module that defines it
_API = {
    # plugin kinds and what they exchange
    "Sampler": "aebench.sampler",
    "Samples": "aebench.sampler",
    "Region": "aebench.region",
    "Metric": "aebench.metric",
    "MetricValue": "aebench.metric",
    "Column": "aebench.metric",
    "FakeSide": "aebench.metric",
    "RealSide": "aebench.metric",
    "CopyEvidence": "aebench.metric",
    "LADDERS": "aebench.metric",
    "FeatureExtractor": "aebench.feature_extractor",
    "DatasetSource": "aebench.dataset",
    "ImageDataset": "aebench.dataset",
    "Architecture": "aebench.model",
    "Autoencoder": "aebench.model",
    "LatentStats": "aebench.stats",
    # typed options
    "option": "aebench.options",
    "NoOptions": "aebench.options",
    # errors a plugin raises
    "AebenchError": "aebench.errors",
    "OptionError": "aebench.errors",
    "DataError": "aebench.errors",
    "CheckpointError": "aebench.errors",
    "NotFittedError": "aebench.errors",
}

__all__ = ["__version__", "hookimpl", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'aebench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from aebench.dataset import DatasetSource, ImageDataset
    from aebench.errors import AebenchError, CheckpointError, DataError, NotFittedError, OptionError
    from aebench.feature_extractor import FeatureExtractor
    from aebench.metric import LADDERS, Column, CopyEvidence, FakeSide, Metric, MetricValue, RealSide
    from aebench.model import Architecture, Autoencoder
    from aebench.options import NoOptions, option
    from aebench.region import Region
    from aebench.sampler import Sampler, Samples
    from aebench.stats import LatentStats
