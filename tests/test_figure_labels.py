"""Every figure says what it shows: a title, labelled axes, and a legend where more than one kind of
thing is plotted. The matplotlib figures are inspected as they are saved; the PIL sample grid gets a
title and a caption band."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import aebench.reports.figures as figures
import aebench.reports.stats_plots as stats_plots
from aebench.stats import compute_stats


@pytest.fixture
def saved(monkeypatch) -> list[Any]:
    """The Figure objects the figure functions save, in order."""
    figs: list[Any] = []
    for module in (figures, stats_plots):
        original = module._save

        def capture(fig, path, _original=original):
            figs.append(fig)
            return _original(fig, path)

        monkeypatch.setattr(module, "_save", capture)
    return figs


def _texts(fig: Any) -> dict[str, Any]:
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    return {
        "suptitle": fig._suptitle.get_text() if fig._suptitle else "",
        "supxlabel": fig._supxlabel.get_text() if fig._supxlabel else "",
        "titles": [ax.get_title() for ax in axes],
        "xlabels": [ax.get_xlabel() for ax in axes],
        "ylabels": [ax.get_ylabel() for ax in axes],
        "legends": [ax.get_legend() for ax in axes if ax.get_legend()] + list(fig.legends),
    }


def _faces(n: int) -> torch.Tensor:
    return torch.randint(0, 255, (n, 1, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_path_strips_have_title_axis_label_and_row_labels(tmp_path, saved):
    pids = torch.arange(2).repeat_interleave(10)
    t = torch.linspace(0, 1, 10).repeat(2)
    figures.path_strips(_faces(20), pids, t, tmp_path / "s.png", labels=["angle 0°", "angle 90°"],
                        title="plane_paths: decoded images along each path")
    info = _texts(saved[-1])
    assert info["suptitle"] == "plane_paths: decoded images along each path"
    assert "position t along the path" in info["supxlabel"]
    assert [y for y in info["ylabels"] if y] == ["angle 0°", "angle 90°"]
    assert {x for x in info["xlabels"] if x} >= {"t=0.00", "t=1.00"}


def test_hits_along_t_has_title_axis_labels_and_a_legend(tmp_path, saved):
    along = {"box": [[0.1, 1.0, 5], [0.9, 0.2, 5]], "knn": [[0.1, 0.9, 5], [0.9, 0.1, 5]]}
    figures.hits_along_t(along, tmp_path / "t.png", title="origin_line: share of points inside each region")
    info = _texts(saved[-1])
    assert info["titles"] == ["origin_line: share of points inside each region"]
    assert "position along the path" in info["xlabels"][0] and "hit rate" in info["ylabels"][0]
    labels = [t.get_text() for t in info["legends"][0].get_texts()]
    assert labels == ["box", "knn", "target 95%"]


def test_latent_scatter_keeps_title_labels_and_legend(tmp_path, saved):
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(50, 4, generator=gen)
    figures.latent_scatter(train, train[:10] * 2, (0, 1), train.mean(0), tmp_path / "sc.png", title="gmm: plane")
    info = _texts(saved[-1])
    assert info["titles"] == ["gmm: plane"] and info["xlabels"] == ["component 0"] and info["ylabels"] == ["component 1"]
    assert len(info["legends"][0].get_texts()) == 4


def test_stats_histograms_have_title_axis_labels_and_a_legend(tmp_path, saved):
    z = torch.randn(200, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * torch.arange(1, 7)
    stats = compute_stats(z)
    stats_plots.plot_dominant_histograms(z, stats, tmp_path / "h.png", top=4)
    info = _texts(saved[-1])
    assert "Value distributions" in info["suptitle"]
    assert len(info["xlabels"]) == 4 and all(x.startswith("value of z[") for x in info["xlabels"])
    assert any(y == "training latents" for y in info["ylabels"])
    labels = {t.get_text() for t in info["legends"][0].get_texts()}
    assert {"mean", "5% and 95% quantiles", "zero", "flagged dominant component"} <= labels
    stats_plots.plot_correlation_matrix(stats, tmp_path / "c.png")
    info = _texts(saved[-1])
    assert info["titles"][0].startswith("Latent correlations") and info["xlabels"][0] == "component"


def test_training_reconstructions_have_title_and_labelled_rows(tmp_path, saved):
    from aebench.models.conv_ae import ConvAE
    from aebench.models.training import reconstruction_grid

    torch.manual_seed(0)
    module = ConvAE(ConvAE.config_for((1, 16, 16), 4, dataset_name="orl_faces", channels=(8, 16))).build().eval()
    reconstruction_grid(module, _faces(20), tmp_path / "r.png", n=12, title="orl_faces: held-out and reconstructed")
    info = _texts(saved[-1])
    assert info["suptitle"] == "orl_faces: held-out and reconstructed"
    assert "held-out image index" in info["supxlabel"]
    assert [y for y in info["ylabels"] if y] == ["held-out", "reconstructed", "held-out", "reconstructed"]


def test_sample_grid_has_a_title_and_a_caption(tmp_path):
    faces = _faces(12)
    titled = np.asarray(Image.open(figures.sample_grid(faces, tmp_path / "t.png", ncols=4, max_images=8,
                                                       title="gmm, seed 0")))
    band = titled.shape[0] - np.asarray(Image.open(figures.sample_grid(faces[:8], tmp_path / "p8.png", ncols=4))).shape[0]
    assert band >= 30  # two text lines: the title and the caption
    assert (titled[:17] < 100).sum() > 20 and (titled[17:band] < 160).sum() > 20  # dark title, grey caption
