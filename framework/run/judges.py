"""Several feature extractors ("judges") in one run (`--features inception,domain`): every image metric is
scored once per judge, on the same decoded images, and nothing else changes.

Why: every image metric otherwise rests on one feature space. A second one (the `domain` judge, a
classifier of the data set's own labels) asks whether another feature space ranks the samplers the same
way; `aebench.verdict.agreement` says whether it does.

How, with the least special-casing: the first extractor keeps the metric's own keys (`fid_recon`: a
single-extractor run is unchanged), each other one's values are the same metric's keys with
`@<name>` (`fid_recon@domain`). Each key is then an ordinary metric key: declared by its metric's Column
(`Metric.column` reads the base key), ranked by the verdict, compared by `aebench compare`, validated by
the ladders, shown by every report. A metric never sees the suffix: it computes on a FakeSide and a
RealSide that carry that judge's features.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Sequence

from aebench.metric import FakeSide, Metric, RealSide


def judged(fake: FakeSide, real: RealSide, others: Sequence[tuple[Any, RealSide]]) -> Iterator[tuple[str, FakeSide, RealSide]]:
    """(key suffix, fake side, real side) per judge: ('', fake, real) for the first extractor, then for each
    other judge (`others`: (its `aebench.run.setup.Extractor`, its real side)) whose features `fake` carries,
    `fake` with those features (and a fresh cache: what a metric kept there may come from the features)."""
    yield "", fake, real
    for judge, judge_real in others:
        features = fake.judge_features.get(judge.name)
        if features is not None:
            yield judge.suffix, replace(fake, features=features, cache={}, judge_features={}), judge_real


def scores_here(metric: Metric, suffix: str) -> bool:
    """Whether `metric` is scored for the judge with this suffix: every metric for the first extractor,
    only the metrics that read image features for the others."""
    return not suffix or "features" in metric.needs
