"""Figures, the results table model, the terminal layouts, markdown and HTML reports. Results
documents come from real tiny runs (tests/conftest.py `toy_run`), not hand-written dicts."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from aebench.errors import AebenchError, UnknownNameError
from aebench.reports import figures
from aebench.reports.html import render_html, write_html
from aebench.reports.markdown import render_markdown, write_markdown
from aebench.reports.table import build_table, format_entry, format_number, metric_columns
from aebench.reports.terminal import render_results

# a long label, several seeds, a labelled variant: what makes a table wide
WIDE_SAMPLERS = (("gaussian", "gaussian", ()), ("origin_line", "origin_line", ()), ("uniform", "uniform", ()),
                 ("plane_paths", "plane_paths_conditional_angles", (("others", "conditional"), ("angles", (0.0, 45.0)))))


def orl_faces(count: int, size: int) -> torch.Tensor:
    """The first `count` real ORL faces (person 1), uint8 [count, 1, size, size]."""
    from aebench.data.orl_faces import DEFAULT_CROP_TOP, orl_folder, read_face

    faces = [read_face(orl_folder() / "s1" / f"{i}.pgm", DEFAULT_CROP_TOP, size) for i in range(1, count + 1)]
    return torch.from_numpy(np.stack(faces))[:, None]


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


# ---------------------------------------------------------------- figures

def test_grid_array_places_each_face_upscaled_in_its_tile():
    faces = orl_faces(4, 32)
    grid = figures.grid_array(faces, ncols=2, scale=2, pad=2)
    assert grid.shape == (2 + 2 * (64 + 2), 2 + 2 * (64 + 2), 1)
    for i in range(4):
        r, c = divmod(i, 2)
        y, x = 2 + r * 66, 2 + c * 66
        expected = faces[i, 0].numpy().repeat(2, axis=0).repeat(2, axis=1)
        np.testing.assert_array_equal(grid[y:y + 64, x:x + 64, 0], expected)
    assert (grid[:2] == 255).all() and (grid[:, 66:68] == 255).all()  # padding stays white


def test_sample_grid_writes_png_with_the_faces(tmp_path):
    faces = orl_faces(4, 32)
    out = figures.sample_grid(faces, tmp_path / "grid.png", ncols=2)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (134, 134)  # 32 px upscaled x2
        arr = np.asarray(im)
    np.testing.assert_array_equal(arr[2:66, 2:66], faces[0, 0].numpy().repeat(2, 0).repeat(2, 1))
    titled = figures.sample_grid(faces, tmp_path / "titled.png", ncols=2, title="gmm")
    with Image.open(titled) as im:
        assert im.size[1] > 134 and np.asarray(im)[:18].min() < 128  # a title band with dark text
    assert not list(tmp_path.glob(".*.tmp"))


def test_sample_grid_rgb_and_max_images(tmp_path):
    rgb = torch.zeros(10, 3, 64, 64, dtype=torch.uint8)
    rgb[:, 0] = 200
    out = figures.sample_grid(rgb, tmp_path / "rgb.png", ncols=4, max_images=8)
    arr = read_png(out)
    assert arr.shape == (2 + 2 * 66, 2 + 4 * 66, 3)  # 8 of 10 images, 64 px: no upscale
    assert tuple(arr[10, 10]) == (200, 0, 0)


@pytest.mark.parametrize("bad", [torch.rand(2, 1, 8, 8), torch.zeros(2, 2, 8, 8, dtype=torch.uint8),
                                 torch.zeros(0, 1, 8, 8, dtype=torch.uint8)])
def test_sample_grid_rejects_bad_images(tmp_path, bad):
    with pytest.raises(AebenchError, match="Images must"):
        figures.sample_grid(bad, tmp_path / "x.png")


def test_pick_along_t_takes_points_nearest_evenly_spaced_t():
    rng = np.random.default_rng(0)
    t = rng.permutation(np.linspace(0.0, 1.0, 101))
    picked = figures.pick_along_t(t, 5)
    np.testing.assert_allclose(t[picked], [0.0, 0.25, 0.5, 0.75, 1.0])
    short = figures.pick_along_t(np.array([0.5, 0.1, 0.9]), 8)
    assert list(short) == [1, 0, 2]  # all points, in t order


def test_path_strips_one_row_per_path(tmp_path):
    faces = orl_faces(10, 32).repeat(6, 1, 1, 1)  # 60 images
    pids = torch.arange(3).repeat_interleave(20)
    t = torch.linspace(0, 1, 20).repeat(3)
    three = read_png(figures.path_strips(faces, pids, t, tmp_path / "s3.png", per_path=6, labels={0: "angle 0°"}))
    one = read_png(figures.path_strips(faces[:20], pids[:20], t[:20], tmp_path / "s1.png", per_path=6))
    assert three.shape[1] > three.shape[0]  # a row of 6 images is wider than 3 rows are high
    assert 1.9 < three.shape[0] / one.shape[0] < 3.5  # 3 rows vs 1, plus the same title and axis label bands
    assert three.std() > 20  # faces, not a blank canvas
    with pytest.raises(AebenchError, match="t has 3 entries"):
        figures.path_strips(faces[:4], pids[:4], t[:3], tmp_path / "bad.png")


def test_latent_scatter_uses_the_seed_colours(tmp_path):
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(400, 6, generator=gen) + 3.0
    samples = torch.randn(100, 6, generator=gen) * 0.3 + 6.0
    samples[0] = float("nan")
    arr = read_png(figures.latent_scatter(train, samples, (1, 4), train.mean(0), tmp_path / "sc.png", title="gmm")).astype(int)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    assert ((r > 200) & (g < 90) & (b < 90)).sum() > 50  # red samples
    assert ((b > r + 30) & (b > 150)).sum() > 50  # blue training points
    assert ((r > 230) & (g > 230) & (b < 80)).sum() > 10  # yellow origin
    assert ((r > 230) & (g > 130) & (g < 190) & (b < 60)).sum() > 10  # orange centre
    with pytest.raises(AebenchError, match="axes must be"):
        figures.latent_scatter(train, samples, (1, 6), train.mean(0), tmp_path / "bad.png")
    with pytest.raises(AebenchError, match="Latent dimensions differ"):
        figures.latent_scatter(train, samples[:, :5], (1, 2), train.mean(0), tmp_path / "bad.png")


def test_hits_along_t(tmp_path):
    along = {"box": [[0.05, 1.0, 25], [0.5, 0.6, 25], [0.95, 0.0, 25]], "knn": [[0.05, 0.9, 25], [0.5, 0.0, 0]]}
    arr = read_png(figures.hits_along_t(along, tmp_path / "t.png", target=0.95))
    assert arr.shape[0] > 200 and arr.shape[1] > 300 and arr.std() > 5
    with pytest.raises(AebenchError, match="No hit rates"):
        figures.hits_along_t({}, tmp_path / "none.png")


# ---------------------------------------------------------------- table model

def test_numbers_read_by_their_declared_unit():
    assert format_number(0.953, unit="rate") == "95.3%"
    assert format_number(216.04) == "216.0" and format_number(47.25) == "47.25" and format_number(0.012345) == "0.0123"
    assert format_number(0.0) == "0" and format_number(None) == "—" and format_number(float("inf")) == "inf"
    assert format_entry({"value": 216.04, "std": 3.21}) == "216.0 ± 3.2"
    assert format_entry({"value": 0.0276, "std": 0.00096}) == "0.0276 ± 0.0010"  # the spread in the mean's decimals
    assert format_entry({"value": 0.5, "low": 0.4, "high": 0.6}, "rate") == "50.0% [40.0%, 60.0%]"
    assert format_entry(None) == "—"
    assert format_number(-5.9e-11) == "-5.9e-11" and format_entry({"value": 5e-5, "std": 1.234e-5}) == "5e-05 ± 1.2e-05"


def test_columns_follow_the_declared_groups(toy_run):
    doc = toy_run()
    keys = metric_columns(doc)
    assert keys.index("radius_error") < keys.index("feature_gap")  # latent group before image group
    assert metric_columns(doc, ["near_share"]) == ["near_share"]
    with pytest.raises(UnknownNameError, match="Unknown metric 'radius_eror' in these results. Did you mean 'radius_error'"):
        metric_columns(doc, ["radius_eror"])
    table = build_table(doc)
    col = next(c for c in table.columns if c.key == "near_share")
    assert col.header == "near share ↑" and col.status == "diagnostic" and col.unit == "rate"


# ---------------------------------------------------------------- terminal

def _render(doc, width):
    console = Console(width=width, record=True, color_system=None)
    layout = render_results(doc, console)
    return layout, console.export_text()


@pytest.mark.parametrize("width", [80, 120, 200])
def test_terminal_never_cuts_a_name_or_a_number(toy_run, width):
    doc = toy_run(samplers=WIDE_SAMPLERS)
    layout, text = _render(doc, width)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    table = build_table(doc)
    for row in table.rows:
        assert row.name in text
        for key, cell in row.cells.items():
            if table.verdict.metrics[key].status in ("ranks", "diagnostic"):
                assert cell.text("std") in text, (row.name, key, cell.text("std"))  # mean ± std over seeds
    assert "±" in text


def test_terminal_switches_layout_with_the_width(toy_run):
    doc = toy_run(samplers=WIDE_SAMPLERS)
    assert _render(doc, 200)[0] == "wide"
    layout, text = _render(doc, 80)
    assert layout == "grouped"
    assert "aebench: orl_faces: ranking" in text and "latent space, against held-out latents" in text
    layout, text = _render(doc, 34)  # narrower than any table: one line per metric, still nothing cut
    assert layout == "lines" and "…" not in text and "plane_paths_conditional_angles" in text
    assert "radius error ↓: " in text


def test_terminal_verdict_lines(toy_run):
    doc = toy_run(samplers=WIDE_SAMPLERS)
    _, text = _render(doc, 200)
    flat = " ".join(text.split())
    assert "Ranked by radius error: validated on the reference data sets, not on this model — run with --validate." in flat
    assert "Not ranked, untrusted: feature gap: the extractor 'fast' is not a validated judge of images." in flat
    assert "Diagnostics, shown but never ranked (their caveats are in report.md): near share: share of samples " \
        "inside the held-out median radius" in flat  # the description's first clause
    assert "Set aside, the same for every sampler: zero a 0.0%, dimension 16.00." in flat
    assert "plane_paths_conditional_angles = plane_paths (others=conditional, angles=[0, 45])" in flat
    assert "zero a ↑" not in text  # a flat column is not a table column in the terminal


def test_terminal_shows_failures_and_refuses_unknown_metrics(toy_run):
    doc = toy_run()
    row = next(r for r in doc["samplers"] if r["name"] == "uniform")
    row.update(status="failed", error="RuntimeError: boom from plugin", metrics={})
    _, text = _render(doc, 200)
    assert "Failed: uniform: RuntimeError: boom from plugin" in text and "failed" in text
    with pytest.raises(UnknownNameError, match="Unknown metric 'fdi'"):
        render_results(doc, Console(width=80), metrics=["fdi"])


# ---------------------------------------------------------------- markdown and HTML

def test_markdown_report(tmp_path, toy_run):
    doc = toy_run()
    md = render_markdown(doc)
    assert md.startswith("# aebench results: orl_faces")
    assert "{'" not in md  # the model's architecture is written out, not printed as a Python dict
    assert re.search(r"\*\*model\*\*: checksum [0-9a-f]{12}, conv_ae \(in channels 1, image size 32, channels 8/16/32", md)
    assert "## Verdict" in md and "| rank | sampler | n | radius error ↓ | time |" in md
    assert "### latent space, against held-out latents" in md
    assert "| sampler | radius error ↓ | near share ↑ |" in md
    table = build_table(doc)
    lines = md.splitlines()
    for row in table.rows:
        line = next(x for x in lines if x.startswith(f"| {row.name}") and "radius error" not in x and x.count("|") == 4)
        cell = row.cells["radius_error"].text("full")
        assert (f"**{cell}**" in line) == row.best and cell in line
        assert "**" not in line.split("|")[3]  # near share: a diagnostic, never bold
    assert re.search(r"^(Use |Not decided yet|No single best)", md, re.M)  # the recommendation, under the basis
    assert "- Set aside, the same for every sampler (no information on this run): zero a 0.0%, dimension 16.00." in md
    assert "## Samplers" in md and "| plane_conditional | plane_paths (others=conditional) |" in md
    assert "<td>plane_conditional</td><td>plane_paths (others=conditional)</td>" in render_html(doc, tmp_path)
    assert "validated judge: no" in md and "not a validated judge of image quality" in md
    assert "| box | 95.0% |" in md
    out = write_markdown(doc, tmp_path)
    assert out == tmp_path / "report.md" and out.read_text(encoding="utf-8") == md


def test_markdown_names_failures_and_incomplete_runs(toy_run):
    doc = toy_run()
    doc["status"] = "running"
    doc["samplers"][1].update(status="failed", error="ValueError: bad | thing", metrics={})
    md = render_markdown(doc)
    assert "- **origin_line**: ValueError: bad \\| thing" in md and "This run is running" in md


def test_html_is_self_contained_built_from_the_table_model_and_escapes(toy_run):
    doc = toy_run(samplers=TOY_FIGURE_SAMPLERS, seeds=(0, 1), figures=True)
    out = doc["config"]["out"]
    evil = doc["samplers"][0]
    evil["name"] = "<script>alert(1)</script>"
    page = render_html(doc, out)
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for attr in ('src="http', "src='http", 'href="http', "href='http", "@import", "url("):
        assert attr not in page
    table = build_table(doc)
    for row in table.rows:
        cell = row.cells["radius_error"]
        cls = "num best" if cell.best else "num"
        assert f'<td class="{cls}">{cell.text("full")}</td>' in page
    assert '<th class="num flat"' in page and '<th class="num untrusted"' in page
    uri = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
        assert im.size[0] > 100 and im.size[1] > 60
    assert write_html(doc, out).read_text(encoding="utf-8") == page


TOY_FIGURE_SAMPLERS = (("gaussian", "gaussian", ()), ("uniform", "uniform", ()))


def test_built_in_latent_metrics_read_the_same_in_every_report(toy_run):
    """One name per metric: the latent metrics' headers say 'latent', as their keys and the README do."""
    doc = toy_run(metrics=("latent_coverage", "latent_fd", "latent_mmd"), seeds=(0, 1))
    _, text = _render(doc, 200)
    md = render_markdown(doc)
    html = render_html(doc, doc["config"]["out"])
    for header in ("latent recall ↑", "latent coverage ↑", "latent FD ↓", "latent MMD² ↓"):
        assert header in text and header in md and f">{header}</th>" in html, header
    for page in (text, md, html):
        assert not re.search(r"\bz (recall|precision|coverage|density|FD|MMD)", page)
    assert "Ranked by latent FD, latent MMD²" in text and "Ranked by latent FD, latent MMD²" in md
