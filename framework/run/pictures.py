"""What the pictures that explain the verdict need, computed during the run: the memorisation gallery's
copies (from the metric's own `copy_evidence`, so the pictures show exactly what the number counts) and
the latent-plane explorer's data (decoded grids across planes of the training latents, the training
latents and each sampler's points projected onto them, the decoded images of those points).

The arrays are drawn into the run's figure folder by the functions handed in as `PictureDrawers` (the
runner passes `aebench.reports.pictures`'s: the run computes, the reports draw, and nothing here imports
them); the explorer's numbers go to small JSON files beside them that report.html embeds
(`aebench.reports.explorer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from aebench.errors import AebenchError
from aebench.infra.io import write_text_atomic
from aebench.metric import CopyEvidence, FakeSide, Metric
from aebench.run.planes import REACH, PlaneBasis, plane_bases, plane_pairs, spaced_rows

COPIES_SHOWN = 8  # copies in the gallery, most copied first
EXPLORER_AXES = 4  # axes per basis: 6 planes each
EXPLORER_GRID = 7  # decoded images a side of a plane's grid (odd: the centre cell is the training mean)
EXPLORER_POINTS = 128  # points of a sampler in the explorer, each with its decoded image (evenly spaced)
EXPLORER_TRAIN = 2000  # training latents projected for the density (a fixed subset beyond that)
SPRITE_COLUMNS = 16
EXPLORER_NAME = "explorer.json"
DECIMALS = 4


@dataclass(frozen=True)
class PictureDrawers:
    """The functions that write the pictures' image files (see `aebench.reports.pictures`): `tile_sprite(images,
    path, *, ncols) -> Path`, `sprite_stride(height, width) -> (h, w)` (a tile's cell in a sprite) and
    `copies_gallery(samples, decoded_train, train_images, captions, path, *, title) -> Path`. Picklable
    (module-level functions), so it travels to an executor's workers in `CellOptions.pictures`."""

    tile_sprite: Callable[..., Path]
    sprite_stride: Callable[[int, int], tuple[int, int]]
    copies_gallery: Callable[..., Path]


def copy_evidence(fake: FakeSide, real: Any, metrics: Sequence[Metric],
                  values: dict[str, dict[str, Any]], producers: dict[str, str]) -> tuple[Metric, CopyEvidence] | None:
    """The first metric that exposes `copy_evidence` and scored these samples above 0 on some key, with its
    evidence; None when none did (no copies beyond chance: no gallery)."""
    for metric in metrics:
        evidence_of = getattr(metric, "copy_evidence", None)
        if evidence_of is None:
            continue
        keys = [k for k, name in producers.items() if name == metric.name]
        if not any(((values.get(k) or {}).get("value") or 0) > 0 for k in keys):
            continue
        try:
            evidence = evidence_of(fake, real)
        except AebenchError:  # the metric's own error is already the cell's
            continue
        if bool(evidence.copied.any()):
            return metric, evidence
    return None


def copies_record(metric: Metric, evidence: CopyEvidence, shown: int = COPIES_SHOWN) -> dict[str, Any]:
    """The results document's record of the gallery (JSON-ready): the rule, the threshold, how many were
    copies, and the `shown` most copied samples with their nearest training latent and scores."""
    rows = evidence.most_copied(shown)
    return {
        "metric": metric.name, "statistic": evidence.statistic, "rule": evidence.rule,
        "threshold": float(evidence.threshold), "copied": int(evidence.copied.sum()), "n": int(evidence.copied.numel()),
        "shown": [{"sample": int(r), "train": int(evidence.nearest_train[r]), "score": float(evidence.score[r]),
                   "train_distance": float(evidence.train_distance[r])} for r in rows.tolist()],
    }


def has_training_images(setup: Any) -> bool:
    """Whether the training latents were encoded from the run's data set, row for row (latent files need
    not be in the data set's order)."""
    return setup.dataset is not None and setup.config.train_latents is None


def training_images(setup: Any, rows: torch.Tensor) -> torch.Tensor | None:
    """The data set's images of training latents `rows`, or None without them (see `has_training_images`)."""
    if not has_training_images(setup):
        return None
    return torch.as_tensor(setup.dataset.images[setup.dataset.train_index[rows]])


def draw_copies(setup: Any, fake: FakeSide, record: dict[str, Any], path: Path, name: str,
                drawers: PictureDrawers) -> Path:
    """The gallery PNG of `record`'s shown copies. The samples are decoded here: a copy may be any of the
    cell's latent draws, not only the decoded first n."""
    from aebench.run import image_pipeline

    shown = record["shown"]
    samples = torch.tensor([s["sample"] for s in shown])
    train_rows = torch.tensor([s["train"] for s in shown])
    latents = torch.cat([fake.latents[samples].to(setup.real.train_latents.dtype), setup.real.train_latents[train_rows]])
    decoded = image_pipeline.decode(setup, latents, quiet=True)
    k = len(shown)
    return drawers.copies_gallery(
        decoded[:k], decoded[k:], training_images(setup, train_rows),
        [f"#{s['sample']} → train #{s['train']}\nscore {s['score']:.2g}" for s in shown], path,
        title=f"{name}: {record['copied']} of {record['n']} samples are copies (seed {fake.seed}); the {k} "
              f"most copied, left to right\nscore: the {record['statistic']}\na copy when {record['rule']}")


def sampler_points(setup: Any, fake: FakeSide, folder: Path, stem: str, label: str, out: Path,
                   drawers: PictureDrawers) -> str:
    """The explorer's file for one sampler (first seed): its decoded points (`fake.images`) on every plane
    basis and a sprite of their images; returns the JSON's path relative to `out`."""
    rows = spaced_rows(int(fake.latents.shape[0]), EXPLORER_POINTS)
    sprite = drawers.tile_sprite(fake.images[rows], folder / f"{stem}_points.jpg", ncols=SPRITE_COLUMNS)
    bases = plane_bases(setup.stats, EXPLORER_AXES)
    data = {
        "label": label, "seed": fake.seed, "n": int(fake.latents.shape[0]), "rows": rows.tolist(),
        "sprite": str(sprite.relative_to(out)), "columns": SPRITE_COLUMNS, "tile": list(fake.images.shape[1:]),
        "stride": list(drawers.sprite_stride(*fake.images.shape[2:])),
        "points": {b.name: _rounded(b.project(fake.latents[rows])) for b in bases},
    }
    path = folder / f"{stem}_explorer.json"
    write_text_atomic(path, json.dumps(data))
    return str(path.relative_to(out))


def explorer_planes(setup: Any, out: Path, drawers: PictureDrawers, quiet: bool = True) -> str:
    """The explorer's run-level file: for each basis and pair of its axes, a sprite of images decoded
    across the plane, and the training latents projected; returns its path relative to `out`."""
    from aebench.run import image_pipeline
    from aebench.run.folder import FIGURE_DIR
    from aebench.run.setup import subset_index

    folder = out / FIGURE_DIR / "explorer"
    folder.mkdir(parents=True, exist_ok=True)
    bases = plane_bases(setup.stats, EXPLORER_AXES)
    pairs = plane_pairs(bases[0].axes.shape[0])
    grids = [(b, i, j, b.grid(i, j, EXPLORER_GRID)) for b in bases for i, j in pairs]
    images = image_pipeline.decode(setup, torch.cat([g for *_, g in grids]),
                                   None if quiet else "explorer: decode planes", quiet=quiet)
    train = setup.real.train_latents
    train_rows = subset_index(int(train.shape[0]), EXPLORER_TRAIN)
    per_grid = EXPLORER_GRID * EXPLORER_GRID
    described = []
    for b in bases:
        low, high = b.extent()
        described.append({"name": b.name, "title": b.title, "labels": list(b.labels),
                          "centre": _rounded(b.centre_xy), "origin": _rounded(b.origin_xy),
                          "low": _rounded(low), "high": _rounded(high),
                          "train": _rounded(b.project(train[train_rows])), "planes": {}})
    for k, (b, i, j, _) in enumerate(grids):
        sprite = drawers.tile_sprite(images[k * per_grid:(k + 1) * per_grid], folder / f"{b.name}_{i}_{j}.jpg",
                             ncols=EXPLORER_GRID)
        next(d for d in described if d["name"] == b.name)["planes"][f"{i},{j}"] = str(sprite.relative_to(out))
    data = {"grid": EXPLORER_GRID, "reach": REACH, "tile": list(images.shape[1:]),
            "stride": list(drawers.sprite_stride(*images.shape[2:])), "train_n": int(train.shape[0]),
            "train_shown": int(train_rows.numel()), "bases": described}
    path = out / FIGURE_DIR / EXPLORER_NAME
    write_text_atomic(path, json.dumps(data))
    return str(path.relative_to(out))


def _rounded(values: torch.Tensor) -> Any:
    return torch.round(values.to(torch.float64), decimals=DECIMALS).tolist()


__all__ = ["COPIES_SHOWN", "EXPLORER_AXES", "EXPLORER_GRID", "EXPLORER_POINTS", "PictureDrawers", "PlaneBasis", "copies_record",
           "copy_evidence", "draw_copies", "explorer_planes", "has_training_images", "sampler_points", "training_images"]
