"""Figures, terminal table, markdown and HTML reports, built from literal results dicts."""

from __future__ import annotations

import base64
import copy
import io

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from aebench.errors import AebenchError, UnknownNameError
from aebench.reports import figures
from aebench.reports.html import render_html, write_html
from aebench.reports.markdown import render_markdown, write_markdown
from aebench.reports.table import best_per_metric, format_metric, metric_columns
from aebench.reports.terminal import render_table, summary_lines


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path / "cache"))


def metric(value, hib, **extra):
    return {"value": value, "higher_is_better": hib, "n": 256, **extra}


def row(name, metrics, kind="sampler", **extra):
    return {"name": name, "kind": kind, "status": "ok", "options": {}, "is_path_sampler": False, "n": 256,
            "seeds": [0, 1], "metrics": metrics, "timing": {"total_s": 1.5}, **extra}


def make_results() -> dict:
    return {
        "schema": "aebench-results/1", "status": "complete", "created": "2025-01-01T00:00:00", "finished": "2025-01-01T00:05:00",
        "environment": {"aebench": "0.1.0", "torch": "2.13.0", "python": "3.11.7", "platform": "Linux", "device": "cpu", "gpu": None},
        "config": {"dataset": "orl_faces", "n": 256, "seeds": [0, 1], "regions": ["box"], "metrics": ["fid", "region_hits"],
                   "features": "inception", "target": 0.95},
        "dataset": {"name": "orl_faces", "options": {"size": 64}, "fingerprint": "f" * 40, "n_train": 320, "n_heldout": 80,
                    "image_shape": [1, 64, 64], "citation": "Samaria & Harter 1994"},
        "model": {"checksum": "abcdef0123456789", "path": "m.safetensors", "latent_dim": 64, "architecture": "conv_ae",
                  "heldout_mse": 0.0047, "baseline_mse": 0.022},
        "features": {"extractor": "inception", "identity": "inception-2015-12-05", "judge": True, "reference": "train", "n_real": 320},
        "regions": {"box": {"target": 0.95, "threshold": 1.3, "heldout_rate": 0.95, "self_consistency": 0.93}},
        "metric_info": {
            "fid": {"higher_is_better": False, "label": "FID", "group": "image"},
            "hit_box": {"higher_is_better": True, "label": "hit box", "group": "region"},
            "latent_coverage": {"higher_is_better": True, "label": "latent coverage", "group": "latent"},
            "reencode_error": {"higher_is_better": None, "label": "re-encode error", "group": "latent"},
        },
        "references": [
            row("real_heldout", {"fid": metric(24.0, False), "hit_box": metric(0.95, True)}, kind="reference"),
        ],
        "samplers": [
            row("gmm", {"fid": metric(216.04, False, std=3.2, per_seed=[212.8, 219.2]), "hit_box": metric(0.8, True),
                        "latent_coverage": metric(0.6, True), "reencode_error": metric(0.1, None)},
                figures={"grid": "figures/gmm_grid.png"}),
            row("origin_line", {"fid": metric(322.0, False, low=310.0, high=330.0), "hit_box": metric(1.0, True),
                                "latent_coverage": metric(0.02, True), "reencode_error": metric(0.05, None)}),
            row("uniform", {"fid": metric(float("nan"), False), "hit_box": metric(0.0, True),
                            "latent_coverage": metric(0.0, True), "reencode_error": metric(0.01, None)}),
            {"name": "broken", "kind": "sampler", "status": "failed", "error": "ValueError: bad | thing", "options": {},
             "is_path_sampler": False, "n": 256, "seeds": [0, 1], "metrics": {}},
        ],
        "figures": {"overview": "figures/overview.png"},
    }


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


@pytest.mark.parametrize("bad", [torch.rand(2, 1, 8, 8), torch.zeros(2, 2, 8, 8, dtype=torch.uint8), torch.zeros(0, 1, 8, 8, dtype=torch.uint8)])
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


def test_hits_along_t_and_metric_bars(tmp_path):
    along = {"box": [[0.05, 1.0, 25], [0.5, 0.6, 25], [0.95, 0.0, 25]], "knn": [[0.05, 0.9, 25], [0.5, 0.0, 0]]}
    arr = read_png(figures.hits_along_t(along, tmp_path / "t.png", target=0.95))
    assert arr.shape[0] > 200 and arr.shape[1] > 300 and arr.std() > 5
    with pytest.raises(AebenchError, match="No hit rates"):
        figures.hits_along_t({}, tmp_path / "none.png")
    bars = read_png(figures.metric_bars(make_results(), "fid", tmp_path / "fid.png"))
    green = (bars[..., 1].astype(int) > bars[..., 0] + 40) & (bars[..., 1].astype(int) > bars[..., 2] + 40)
    assert green.sum() > 100  # the best sampler's bar
    with pytest.raises(AebenchError, match="No row has a value"):
        figures.metric_bars(make_results(), "nope", tmp_path / "x.png")


# ---------------------------------------------------------------- table model and terminal

def test_best_per_metric_respects_direction_and_skips_refs_failed_nan_and_null():
    results = make_results()
    best = best_per_metric(results)
    assert best["fid"] == {"gmm"}  # lowest among samplers; the reference (24.0) and NaN never count
    assert best["hit_box"] == {"origin_line"}
    assert best["latent_coverage"] == {"gmm"}
    assert "reencode_error" not in best  # informational
    results["samplers"][2]["metrics"]["hit_box"]["value"] = 1.0
    assert best_per_metric(results, ["hit_box"])["hit_box"] == {"origin_line", "uniform"}  # ties: both
    results["metric_info"]["fid"]["higher_is_better"] = True
    assert best_per_metric(results, ["fid"])["fid"] == {"origin_line"}


def test_format_metric():
    results = make_results()
    assert format_metric(results, "hit_box", {"value": 0.953}) == "95.3%"
    assert format_metric(results, "fid", {"value": 216.04, "std": 3.21}) == "216.0 ± 3.2"
    assert format_metric(results, "fid", {"value": 47.25, "low": 40.0, "high": 51.0}) == "47.2 [40.0, 51.0]"
    assert format_metric(results, "latent_coverage", {"value": 0.5, "low": 0.4, "high": 0.6}) == "50.0% [40.0%, 60.0%]"
    assert format_metric(results, "reencode_error", {"value": 0.012345}) == "0.0123"
    assert format_metric(results, "fid", None) == "—"


def test_render_table_highlights_best_and_shows_failures():
    console = Console(record=True, width=220, color_system=None)
    table = render_table(make_results(), console)
    headers = [str(c.header) for c in table.columns]
    assert headers[:5] == ["sampler", "", "n", "FID ↓", "hit box ↑"]
    fid_cells = table.columns[3]._cells
    names = [str(c) for c in table.columns[0]._cells]
    assert names == ["real_heldout", "gmm", "origin_line", "uniform", "broken"]
    assert fid_cells[1].style == "bold green" and str(fid_cells[1]) == "216.0 ± 3.2"
    assert fid_cells[0].style != "bold green" and fid_cells[2].style != "bold green"
    assert fid_cells[4].style == "red" and "ValueError" in str(fid_cells[4])
    text = console.export_text()
    assert "ref" in text and "inception" in text and "abcdef012345" in text and "seeds 0, 1" in text
    with pytest.raises(UnknownNameError, match="Unknown metric 'fdi'"):
        render_table(make_results(), console, metrics=["fdi"])
    assert metric_columns(make_results(), ["hit_box"]) == ["hit_box"]


def test_summary_lines_pair_hit_rate_with_coverage():
    lines = summary_lines(make_results())
    assert lines[0].startswith("4 sampler(s) on orl_faces") and "3 ok, 1 failed" in lines[0]
    hit = next(line for line in lines if line.startswith("Best hit box"))
    assert "origin_line (100.0%, latent_coverage 2.0%)" in hit
    assert any(line.startswith("Failed: broken: ValueError") for line in lines)


def test_summary_lines_prefer_latent_recall_which_exposes_collapse():
    """Naeem coverage stays ~1 for points collapsed at the centre in high dimension; recall does not."""
    results = make_results()
    for row_ in results["samplers"][:3]:
        row_["metrics"]["latent_recall"] = metric(0.0 if row_["name"] == "origin_line" else 0.5, True)
    results["samplers"][1]["metrics"]["latent_coverage"] = metric(1.0, True)
    hit = next(line for line in summary_lines(results) if line.startswith("Best hit box"))
    assert "origin_line (100.0%, latent_recall 0.0%)" in hit
    assert "latent recall" in render_markdown(results) and "collapse" in render_markdown(results)


# ---------------------------------------------------------------- markdown and HTML

def test_markdown_has_provenance_table_bold_best_and_notes(tmp_path):
    md = render_markdown(make_results())
    assert md.startswith("# aebench results: orl_faces")
    assert "| sampler |  | FID ↓ | hit box ↑ | latent coverage ↑ | re-encode error | time |" in md
    gmm_line = next(line for line in md.splitlines() if line.startswith("| gmm |"))
    assert "**216.0 ± 3.2**" in gmm_line and "**60.0%**" in gmm_line and "**10" not in gmm_line
    ref_line = next(line for line in md.splitlines() if line.startswith("| real_heldout |"))
    assert "**" not in ref_line  # references are never highlighted, even with the best FID
    assert "- **broken**: ValueError: bad \\| thing" in md
    assert "| box | 95.0% | 1.30 | 95.0% | 93.0% |" in md
    assert "abcdef012345" in md and "validated judge: yes" in md and "n_real 320" in md and "torch 2.13.0" in md
    assert "collapse" in md and "equal n" in md
    assert "![overview](figures/overview.png)" in md and "[samples](figures/gmm_grid.png)" in md
    out = write_markdown(make_results(), tmp_path)
    assert out == tmp_path / "report.md" and out.read_text(encoding="utf-8") == md


def test_markdown_warns_about_unvalidated_extractor_and_incomplete_run():
    results = make_results()
    results["features"]["judge"] = False
    results["status"] = "running"
    md = render_markdown(results)
    assert "not a validated judge" in md and "This run is running" in md


def test_html_is_self_contained_and_escapes(tmp_path):
    results = make_results()
    figures.sample_grid(orl_faces(4, 32), tmp_path / "figures" / "gmm_grid.png")
    evil = copy.deepcopy(results["samplers"][0])
    evil["name"] = "<script>alert(1)</script>"
    evil["figures"] = {"grid": "figures/missing.png"}
    results["samplers"].append(evil)
    page = render_html(results, tmp_path)
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for attr in ('src="http', "src='http", 'href="http', "href='http", "@import", "url("):
        assert attr not in page
    assert '<td class="num best">216.0 ± 3.2</td>' in page
    assert "figure missing (figures/missing.png)" in page
    # the embedded image decodes back to the grid that was written
    uri = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
        assert im.size == (266, 68)  # 4 faces upscaled to 64 px in one row
    assert write_html(results, tmp_path).read_text(encoding="utf-8") == page
