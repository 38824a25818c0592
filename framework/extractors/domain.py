"""`domain`: a second judge that knows the data set. Features are the penultimate layer of a small CNN
classifier trained offline on the data set's own labels, at its native resolution (Fashion-MNIST's 10
classes, ORL's 40 people, an image folder's class sub-folders): `aebench judge train`, or trained on first
use and cached like the autoencoder.

Why: Inception-v3 learnt ImageNet and sees 28x28 clothing or 64x64 grey faces upscaled to 299x299; the
field scores MNIST-like generators with a classifier of the data set itself. Running both
(`--features inception,domain`) asks whether another feature space ranks the samplers the same way. On a
CPU it costs a tiny fraction of Inception (`benchmarks/bench_throughput.py`).

Identity: `domain:<data set>-<fingerprint>:<sha256 of the weights, 12 hex>` keys the feature cache; the
held-out accuracy, class count and the data it was trained on go to the results' `features.provenance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aebench import hookimpl
from aebench.errors import DataError, OptionError
from aebench.feature_extractor import ExtractorContext, FeatureExtractor, check_images
from aebench.models.classifier import JudgeClassifier
from aebench.options import option

DEFAULT_WIDTH = 128


class DomainFeatures(nn.Module):
    """uint8 images [n, c, s, s] of the judge's own shape -> its penultimate features [n, width]."""

    def __init__(self, classifier: JudgeClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = int(classifier.num_features)
        self.image_shape = tuple(classifier.image_shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "the domain extractor")
        if tuple(images.shape[1:]) != self.image_shape:
            raise DataError(f"the domain judge takes images {self.image_shape}, got {tuple(images.shape[1:])}; it "
                            f"judges only images of the data set it was trained on, at that size.")
        return self.classifier.features(images.float().div(255.0)).float()


class DomainJudge(FeatureExtractor):
    name = "domain"
    description = (
        "Penultimate-layer features (128-d) of a small CNN classifier trained on the data set's own labels at "
        "its native resolution (`aebench judge train`; trained on first use and cached, a minute or two on a "
        "CPU). A second judge beside Inception: run both with --features inception,domain. Needs a labelled "
        "data set (Fashion-MNIST, ORL, image_folder with class sub-folders)."
    )
    num_features = DEFAULT_WIDTH
    judge = True
    memory_per_image_mb = 0.5  # 64x64 input, 16 channels at full size: well under a MiB per image

    @dataclass(frozen=True)
    class Options:
        checkpoint: str = option("", "a judge checkpoint (judge.safetensors or its folder); empty = the data set's "
                                     "cached judge, trained on first use")
        seed: int = option(0, "seed of the cached judge to use (or train)", min=0)

    def __init__(self, options: Any = None, **values: Any):
        super().__init__(options, **values)
        self._state: dict[str, torch.Tensor] | None = None
        self._config: dict[str, Any] | None = None
        self._identity: str | None = None
        self._provenance: dict[str, Any] = {}

    def bind(self, context: ExtractorContext) -> None:
        from aebench.caches.judges import resolve_judge

        if context.dataset is None:
            raise OptionError("--features domain needs a data set (its judge is trained on the data set's labels); "
                              "add --dataset or use --features inception.")
        judge = resolve_judge(context.dataset, checkpoint=self.options.checkpoint or None, seed=self.options.seed,
                              cache_dir=context.cache_dir, device=context.device, quiet=context.quiet)
        trained_on = judge.sidecar.get("dataset") or {}
        self._state = {k: v.detach().clone() for k, v in judge.module.state_dict().items()}
        self._config = dict(judge.sidecar["architecture"]["config"])
        self._identity = f"domain:{trained_on.get('name')}-{trained_on.get('fingerprint')}:{judge.checksum[:12]}"
        self._provenance = judge.provenance()
        self.num_features = int(judge.module.num_features)  # type: ignore[misc]  # the judge's own width

    def _require_bound(self) -> None:
        if self._state is None:
            raise OptionError("the domain extractor has no judge yet: a run binds it to its data set first "
                              "(FeatureExtractor.bind); outside a run, use aebench.caches.judges.load_judge.")

    def build(self, device: torch.device | str = "cpu") -> nn.Module:
        from aebench.models.classifier import build_classifier

        self._require_bound()
        classifier = build_classifier(self._config)  # type: ignore[arg-type]
        classifier.load_state_dict(self._state)  # type: ignore[arg-type]
        return DomainFeatures(classifier).to(device).eval()

    def identity(self) -> str:
        self._require_bound()
        return self._identity  # type: ignore[return-value]

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)


@hookimpl
def register_feature_extractors(register):
    register(DomainJudge)
