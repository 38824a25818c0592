"""The hooks a plugin implements: one `register_*` hook per kind of thing, each given a `register` callback.

A plugin is a module (or object) with functions decorated by `aebench.hookimpl` whose names are the hooks
below. Each hook receives `register`; call it once per class. Classes are registered, not instances: aebench
builds them with their typed options when a run asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from aebench.dataset import DatasetSource
    from aebench.feature_extractor import FeatureExtractor
    from aebench.metric import Metric
    from aebench.model import Architecture
    from aebench.region import Region
    from aebench.sampler import Sampler

hookspec = pluggy.HookspecMarker("aebench")
hookimpl = pluggy.HookimplMarker("aebench")


@hookspec
def register_samplers(register: Callable[[type[Sampler]], None]) -> None:
    """Register sampler plugins (strategies that propose latent vectors).

    :param register: call ``register(SamplerClass)`` once per :class:`aebench.Sampler` subclass; its
        ``name`` is the value of ``aebench run --sampler``.
    """


@hookspec
def register_datasets(register: Callable[[type[DatasetSource]], None]) -> None:
    """Register data set plugins (image collections an autoencoder is trained and judged on).

    :param register: call ``register(DatasetClass)`` once per :class:`aebench.DatasetSource` subclass; its
        ``name`` is the value of ``--dataset``.
    """


@hookspec
def register_regions(register: Callable[[type[Region]], None]) -> None:
    """Register region plugins (calibrated latent-space regions that say where samples land).

    :param register: call ``register(RegionClass)`` once per :class:`aebench.Region` subclass; its ``name``
        is the value of ``--region``.
    """


@hookspec
def register_metrics(register: Callable[[type[Metric]], None]) -> None:
    """Register metric plugins (scores of a sampler's latents and decoded images).

    :param register: call ``register(MetricClass)`` once per :class:`aebench.Metric` subclass; each class
        declares the keys it produces in ``columns`` (:class:`aebench.Column`).
    """


@hookspec
def register_feature_extractors(register: Callable[[type[FeatureExtractor]], None]) -> None:
    """Register feature extractor plugins (image -> feature vector maps used by FID, KID and PRDC).

    :param register: call ``register(ExtractorClass)`` once per :class:`aebench.FeatureExtractor` subclass;
        its ``name`` is the value of ``--features``.
    """


@hookspec
def register_architectures(register: Callable[[type[Architecture]], None]) -> None:
    """Register architecture plugins (autoencoder model families ``aebench train --arch`` builds).

    :param register: call ``register(ArchitectureClass)`` once per :class:`aebench.Architecture` subclass.
    """
