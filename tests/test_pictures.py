"""The pictures that explain the verdict: the memorisation gallery (copies from the metric's own evidence),
the ladder strips of the validation section, the latent-plane explorer's data, and hostile sampler labels
escaped wherever these sections print them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import DATA, HOSTILE
from PIL import Image

from aebench.cli import main
from aebench.metric import CopyEvidence, FakeSide, RealSide
from aebench.metrics.memorisation import LatentCopies
from aebench.reports.explorer import explorer_data, script_json
from aebench.run.planes import plane_bases, plane_pairs, spaced_rows
from aebench.stats import compute_stats
from aebench.validation.ladders import build_ladders, example_rows


def _latents(n: int, dim: int = 6, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=gen) * torch.linspace(3, 0.5, dim)


# ------------------------------------------------------------------------------------ planes


def test_a_plane_grid_lies_on_its_plane_at_the_cell_centres():
    stats = compute_stats(_latents(300))
    for basis in plane_bases(stats, 4):
        assert torch.allclose(basis.axes @ basis.axes.T, torch.eye(4, dtype=torch.float64), atol=1e-9)
        low, high = basis.extent()
        grid = basis.grid(0, 2, 5)
        xy = basis.project(grid)
        cell = (high - low) / 5
        # row 0 is the top (highest y), column 0 the left (lowest x); the other axes stay at the centre
        assert xy[0, 0] == pytest.approx(float(low[0] + cell[0] / 2), abs=1e-4)
        assert xy[0, 2] == pytest.approx(float(high[2] - cell[2] / 2), abs=1e-4)
        assert xy[24, 0] == pytest.approx(float(high[0] - cell[0] / 2), abs=1e-4)
        assert torch.allclose(xy[:, [1, 3]], basis.centre_xy[[1, 3]].expand(25, 2), atol=1e-4)
        assert torch.allclose(xy[12], basis.centre_xy, atol=1e-4)  # odd grid: the middle cell is the centre
    principal, dominant = plane_bases(stats, 4)
    assert torch.allclose(principal.centre_xy, torch.zeros(4, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(dominant.origin_xy, torch.zeros(4, dtype=torch.float64))
    assert dominant.labels[0] == f"component {int(stats.dominance_order[0])}"
    with pytest.raises(Exception, match="two different axes"):
        principal.grid(1, 1, 3)


def test_spaced_rows_cover_the_whole_sampling_order():
    assert spaced_rows(5, 8).tolist() == [0, 1, 2, 3, 4]
    rows = spaced_rows(1000, 128)
    assert len(rows) == 128 and rows[0] == 0 and rows[-1] == 999
    assert plane_pairs(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


# ------------------------------------------------------------------------------------ copies


def test_copy_evidence_is_what_latent_copies_counts():
    train, heldout = _latents(200, seed=1), _latents(80, seed=2)
    real = RealSide(train_latents=train, heldout_latents=heldout, stats=compute_stats(train))
    samples = torch.cat([train[:30] + 1e-3, _latents(70, seed=3)])  # 30 replayed training latents
    metric = LatentCopies({"n_boot": 10})
    fake = FakeSide("replay", samples)
    evidence = metric.copy_evidence(fake, real)
    value = metric.compute(fake, real)["latent_copies"]
    assert value.value == pytest.approx(float(evidence.copied.double().mean()) - value.info["chance"])
    assert value.info["share_copies"] == pytest.approx(float(evidence.copied.double().mean()))
    assert evidence.copied[:30].all() and torch.equal(evidence.nearest_train[:30], torch.arange(30))
    top = evidence.most_copied(8)
    assert len(top) == 8 and (evidence.score[top].diff() >= 0).all() and evidence.copied[top].all()


def test_most_copied_takes_only_copies_lowest_score_first():
    evidence = CopyEvidence(score=torch.tensor([0.5, 0.1, 2.0, 0.3], dtype=torch.float64), threshold=1.0,
                            copied=torch.tensor([True, True, False, True]), nearest_train=torch.arange(4),
                            train_distance=torch.zeros(4), statistic="s", rule="r")
    assert evidence.most_copied(5).tolist() == [1, 3, 0]
    assert evidence.most_copied(2).tolist() == [1, 3]


# ------------------------------------------------------------------------------------ ladder strips


def test_strip_rows_show_the_replacement_spreading():
    train, base = _latents(200, seed=4), _latents(60, seed=5)
    ladders = build_ladders(base, train, compute_stats(train), steps=6, clusters=4)
    for name in ("contamination", "moments", "memorisation"):
        ladder = ladders.ladders[name]
        rows = example_rows(ladder, 4)
        first = [next(i for i, s in enumerate(ladder.steps) if int(s.pool[r]) != int(ladder.steps[0].pool[r]))
                 for r in rows.tolist()]
        assert first == sorted(first) and first[0] == 1 and first[-1] == 5, (name, first)
    assert len(example_rows(ladders.ladders["collapse"], 4)) == 4


# ------------------------------------------------------------------------------------ escaping


def test_json_in_a_script_element_cannot_close_it():
    text = script_json({"label": HOSTILE + "<!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["label"] == HOSTILE + "<!-- & \u2028"


def test_the_gallery_shows_the_copies_the_metric_counted(hostile_run):
    doc = json.loads((hostile_run / "results.json").read_text())
    rows = {r["name"]: r for r in doc["samplers"]}
    copier = rows[HOSTILE]
    assert copier["metrics"]["latent_copies"]["value"] > 0
    copies = copier["copies"]
    assert copies["metric"] == "latent_copies" and 0 < len(copies["shown"]) <= 8
    assert all(s["score"] < copies["threshold"] for s in copies["shown"])
    assert [s["score"] for s in copies["shown"]] == sorted(s["score"] for s in copies["shown"])
    # the first seed's share of copies is the metric's (value = share - the 5% chance rate)
    cell = next(c for c in doc["cells"] if c["sampler"] == HOSTILE)
    assert copies["copied"] / copies["n"] == pytest.approx(cell["values"]["latent_copies"]["info"]["share_copies"])
    with Image.open(hostile_run / copies["figure"]) as img:
        assert img.width > 600 and img.height > 300  # three rows of images under a title
    assert copies["training_images"] is True
    assert "copies" not in rows["gmm"] or rows["gmm"]["metrics"]["latent_copies"]["value"] > 0
    md = (hostile_run / "report.md").read_text()
    assert "## Memorisation: the copies behind latent copies" in md and f"]({copies['figure']})" in md


def test_hostile_labels_are_escaped_in_every_new_section(hostile_run):
    md = (hostile_run / "report.md").read_text()
    page = (hostile_run / "report.html").read_text()
    assert HOSTILE not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert HOSTILE not in page
    assert "<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>" in page  # the gallery's heading
    # exactly the report's own two scripts: the explorer's data (JSON) and its code
    assert re.findall(r"<script[^>]*>", page) == ['<script type="application/json" id="aeb-explorer-data">', "<script>"]
    data = page.split('id="aeb-explorer-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["samplers"][0]["label"] == HOSTILE


def test_explorer_data_is_complete_and_small(hostile_run):
    doc = json.loads((hostile_run / "results.json").read_text())
    data = explorer_data(doc, hostile_run)
    assert [b["name"] for b in data["bases"]] == ["principal", "dominant"]
    for basis in data["bases"]:
        assert len(basis["labels"]) == 4 and sorted(basis["planes"]) == ["0,1", "0,2", "0,3", "1,2", "1,3", "2,3"]
        assert len(basis["train"]) == doc["dataset"]["n_train"]
        assert all(lo < c < hi for lo, c, hi in zip(basis["low"], basis["centre"], basis["high"]))
    assert [s["label"] for s in data["samplers"]] == [HOSTILE, "gmm"]
    for sampler in data["samplers"]:
        assert len(sampler["rows"]) == 48 and all(len(p) == 48 for p in sampler["points"].values())
    assert all(uri.startswith("data:image/jpeg;base64,") for uri in data["images"])
    assert len(data["images"]) == 12 + 2
    # a damaged folder gives a one-line reason in the report, not a crash
    (hostile_run / doc["explorer"]).rename(hostile_run / "moved.json")
    try:
        page = __import__("aebench.reports.html", fromlist=["render_html"]).render_html(doc, hostile_run)
        assert "The explorer cannot be shown:" in page and "aeb-explorer-data" not in page
    finally:
        (hostile_run / "moved.json").rename(hostile_run / doc["explorer"])


def test_validate_draws_a_strip_for_every_ladder(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "validate"
    assert main(["validate", "--checkpoint", str(tiny_orl_checkpoint), *DATA, "--n", "40", "--steps", "4",
                 "--metrics", "latent_copies,latent_fd", "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    strips = doc["validation"]["strips"]
    assert list(strips) == ["collapse", "spread", "contamination", "mode_drop", "moments", "memorisation"]
    for path in strips.values():
        with Image.open(out / path) as img:
            assert img.format == "PNG" and img.width > 400
            grey = np.asarray(img.convert("L"), dtype=np.float64)
            assert grey.std() > 10  # faces, not a blank canvas
    md = (out / "report.md").read_text()
    assert "### What each step looks like" in md
    assert all(f"]({path})" in md for path in strips.values())
    assert (out / "report.html").read_text().count("data:image/png;base64,") >= 7  # the plot and six strips
