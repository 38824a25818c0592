"""The hooks a plugin implements: one `register_*` hook per kind of thing, each given a `register` callback."""

import pluggy

hookspec = pluggy.HookspecMarker("aebench")
hookimpl = pluggy.HookimplMarker("aebench")


@hookspec
def register_samplers(register):
    """Register Sampler subclasses: call register(SamplerClass) for each."""


@hookspec
def register_datasets(register):
    """Register DatasetSource subclasses: call register(DatasetClass) for each."""


@hookspec
def register_regions(register):
    """Register Region subclasses: call register(RegionClass) for each."""


@hookspec
def register_metrics(register):
    """Register Metric subclasses: call register(MetricClass) for each."""


@hookspec
def register_feature_extractors(register):
    """Register FeatureExtractor subclasses: call register(ExtractorClass) for each."""


@hookspec
def register_architectures(register):
    """Register Architecture subclasses (autoencoder model families): call register(ArchitectureClass)."""
