"""Latent statistics, the latents/stats cache and `aebench stats`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file as save_numpy

import aebench.caches.latents
import aebench.plugins
from aebench.caches.latents import encoded_latents, latent_stats, latents_path, load_latent_arrays, stats_path
from aebench.cli import main
from aebench.data.orl_faces import OrlFaces
from aebench.errors import CheckpointError, DataError, OptionError
from aebench.reports.stats_plots import plot_correlation_matrix, plot_dominant_histograms
from aebench.stats import compute_stats, load_stats, save_stats

DATA_PLUGINS = ("aebench.data.orl_faces", "aebench.data.fashion_mnist", "aebench.data.image_folder")


class TinyAE(torch.nn.Module):
    """A deterministic linear autoencoder for 1x16x16 images that counts its encode calls."""

    latent_dim = 8
    image_shape = (1, 16, 16)

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.enc = torch.nn.Parameter(torch.randn(256, 8, generator=gen) / 16)
        self.dec = torch.nn.Parameter(torch.randn(8, 256, generator=gen) / 4)
        self.encode_calls = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.encode_calls += 1
        return x.flatten(1) @ self.enc

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ self.dec).view(-1, *self.image_shape)


@dataclass
class StandInModel:
    """The parts of model_cache.LoadedModel that latents.py uses."""

    module: TinyAE
    cache_dir: Path
    checksum: str = "tiny-0"
    latent_dim: int = 8
    image_shape: tuple = (1, 16, 16)
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@pytest.fixture(scope="module")
def orl16():
    return OrlFaces(size=16).load(Path("unused"))


@pytest.fixture
def model(tmp_path):
    return StandInModel(TinyAE(), tmp_path / "model")


# -- compute_stats against numpy ---------------------------------------------------------------------


def test_stats_match_numpy_on_random_data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6) * 3
    s = compute_stats(torch.from_numpy(z))
    assert s.n == 500 and s.latent_dim == 6
    np.testing.assert_allclose(s.mean.numpy(), z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.std.numpy(), z.std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(s.min.numpy(), z.min(0))
    np.testing.assert_allclose(s.max.numpy(), z.max(0))
    np.testing.assert_allclose(s.cov.numpy(), np.cov(z, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.corr.numpy(), np.corrcoef(z, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.quantiles.numpy(), np.quantile(z, s.quantile_levels.numpy(), axis=0), rtol=1e-12)
    evals, evecs = np.linalg.eigh(np.cov(z, rowvar=False))
    np.testing.assert_allclose(s.pca_variance.numpy(), evals[::-1], rtol=1e-9)
    # each principal axis equals numpy's eigenvector up to sign
    dots = np.abs(np.sum(s.pca_axes.numpy() * evecs[:, ::-1].T, axis=1))
    np.testing.assert_allclose(dots, np.ones(6), atol=1e-9)
    assert s.condition_number == pytest.approx(evals.max() / evals.min(), rel=1e-9)
    top = np.abs(np.corrcoef(z, rowvar=False)[np.triu_indices(6, 1)]).max()
    assert abs(float(s.pair_corr[0])) == pytest.approx(top, rel=1e-12)


def test_dominant_components_on_a_constructed_example():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(400, 32, generator=gen, dtype=torch.float64)
    z[:, 11] += 4.0
    z[:, 3] += 6.0
    z[:, 20] *= 5.0  # large spread also makes a component dominant (rms = sqrt(mean^2 + std^2))
    s = compute_stats(z)
    assert s.dominant.tolist() == [3, 20, 11]
    assert s.dominance_order[:3].tolist() == [3, 20, 11]


def test_stats_save_load_round_trip_is_identical(tmp_path):
    z = torch.randn(50, 5, generator=torch.Generator().manual_seed(2))
    s = compute_stats(z, meta={"model_checksum": "abc", "dataset": "x"})
    back = load_stats(save_stats(s, tmp_path / "s.safetensors"))
    for name in ("mean", "std", "min", "max", "quantile_levels", "quantiles", "cov", "corr", "pca_axes",
                 "pca_variance", "dominance", "dominant", "pairs", "pair_corr"):
        assert torch.equal(getattr(back, name), getattr(s, name)), name
    assert back.n == s.n and back.meta == s.meta


def test_corrupt_or_truncated_stats_file_errors(tmp_path):
    path = tmp_path / "s.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_stats(path)
    good = save_stats(compute_stats(torch.randn(20, 4)), tmp_path / "good.safetensors")
    good.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="rerun `aebench stats`"):
        load_stats(good)


# -- cached latents and stats ------------------------------------------------------------------------


def test_encoded_latents_are_cached_and_match_the_model(model, orl16):
    train, heldout = encoded_latents(model, orl16)
    assert train.shape == (320, 8) and heldout.shape == (80, 8) and train.dtype == torch.float32
    expected = orl16.images.float().div(255).flatten(1) @ model.module.enc.detach()
    torch.testing.assert_close(train, expected[orl16.train_index])
    torch.testing.assert_close(heldout, expected[orl16.heldout_index])
    assert latents_path(model, orl16).is_file()
    calls = model.module.encode_calls
    train2, heldout2 = encoded_latents(model, orl16)
    assert model.module.encode_calls == calls  # read from the cache, not encoded again
    assert torch.equal(train2, train) and torch.equal(heldout2, heldout)
    # another model checksum in the same folder does not reuse the entry
    other = StandInModel(TinyAE(seed=1), model.cache_dir, checksum="tiny-1")
    train3, _ = encoded_latents(other, orl16)
    assert other.module.encode_calls > 0 and not torch.equal(train3, train)


def test_latent_stats_saved_beside_the_model_and_reused(model, orl16, monkeypatch):
    stats = latent_stats(model, orl16)
    path = stats_path(model, orl16)
    assert path.parent == model.cache_dir and path.is_file()
    assert stats.meta["model_checksum"] == "tiny-0" and stats.meta["fingerprint"] == orl16.fingerprint()
    assert stats.n == 320

    def no_compute(*args, **kwargs):
        raise AssertionError("statistics recomputed despite the cache")

    monkeypatch.setattr(aebench.caches.latents, "compute_stats", no_compute)
    again = latent_stats(model, orl16)
    assert torch.equal(again.cov, stats.cov)
    # a corrupt stats file is recomputed rather than trusted
    path.write_bytes(b"garbage")
    with pytest.raises(AssertionError, match="recomputed"):
        latent_stats(model, orl16)


# -- user-supplied latent arrays ---------------------------------------------------------------------


def test_load_latent_arrays_npy_and_safetensors(tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "train.npy", rng.normal(size=(30, 4)))
    save_numpy({"heldout": rng.normal(size=(10, 4)).astype(np.float32), "extra": np.zeros((2, 2), np.float32)},
               str(tmp_path / "held.safetensors"))
    train, heldout = load_latent_arrays(tmp_path / "train.npy", tmp_path / "held.safetensors")
    assert train.shape == (30, 4) and heldout.shape == (10, 4)
    assert train.dtype == heldout.dtype == torch.float32


@pytest.mark.parametrize("case, message", [
    ("pickle", "pickles"), ("suffix", "unsupported latents format"), ("ndim", "2-D"), ("dims", "N=4 but"),
    ("nan", "NaN or Inf in 1 of 30 rows"), ("object", "not a plain numeric"), ("missing", "does not exist"),
    ("names", "name it 'heldout'"), ("no_heldout", "--heldout-latents"), ("too_few", "at least 2 training"),
])
def test_bad_latent_arrays(tmp_path, case, message):
    rng = np.random.default_rng(4)
    train, held = tmp_path / "train.npy", tmp_path / "held.npy"
    np.save(train, rng.normal(size=(30, 4)))
    np.save(held, rng.normal(size=(10, 4)))
    if case == "pickle":
        held = tmp_path / "held.pt"
        held.write_bytes(b"whatever")
    elif case == "suffix":
        held = tmp_path / "held.csv"
        held.write_text("1,2\n")
    elif case == "ndim":
        np.save(held, rng.normal(size=(10, 4, 1)))
    elif case == "dims":
        np.save(held, rng.normal(size=(10, 5)))
    elif case == "nan":
        bad = rng.normal(size=(30, 4))
        bad[7, 2] = np.nan
        np.save(train, bad)
    elif case == "object":
        np.save(held, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "missing":
        held = tmp_path / "nope.npy"
    elif case == "names":
        held = tmp_path / "held.safetensors"
        save_numpy({"a": np.zeros((3, 4), np.float32), "b": np.zeros((3, 4), np.float32)}, str(held))
    elif case == "no_heldout":
        held = None
    elif case == "too_few":
        np.save(train, rng.normal(size=(1, 4)))
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        load_latent_arrays(train, held)


# -- plots and the command ---------------------------------------------------------------------------


def test_plots_are_pngs(tmp_path):
    z = torch.randn(200, 10, generator=torch.Generator().manual_seed(5))
    z[:, 4] += 5
    s = compute_stats(z)
    for path in (plot_dominant_histograms(z, s, tmp_path / "h.png", top=6), plot_correlation_matrix(s, tmp_path / "c.png")):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 200
    with pytest.raises(Exception, match="do not match"):
        plot_dominant_histograms(z[:, :3], s, tmp_path / "bad.png")


@pytest.fixture
def stats_cli(monkeypatch, tmp_path):
    """Only the data plugins, and resolve_model returning the tiny stand-in model."""
    import aebench.caches.models as model_cache

    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", DATA_PLUGINS)
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()
    stand_in = StandInModel(TinyAE(), tmp_path / "model", path=tmp_path / "model" / "model.safetensors")
    seen: dict[str, Any] = {}

    def fake_resolve(dataset, **kwargs):
        seen.update(kwargs, dataset=dataset)
        return stand_in

    monkeypatch.setattr(model_cache, "resolve_model", fake_resolve)
    return stand_in, seen


def test_stats_command_end_to_end_json(stats_cli, tmp_path, capsys):
    stand_in, seen = stats_cli
    out = tmp_path / "figs"
    rc = main(["stats", "--set", "dataset.size=16", "--device", "cpu", "--top", "5", "--json", "--out", str(out)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert seen["dataset"].images.shape == (400, 1, 16, 16) and seen["quiet"] is True
    assert doc["stats"]["n"] == 320 and doc["stats"]["latent_dim"] == 8
    assert len(doc["components"]) == 5 and len(doc["pca"]) == 5 and len(doc["pairs"]) == 5
    stats = load_stats(doc["stats_file"])
    assert Path(doc["stats_file"]).parent == stand_in.cache_dir
    assert doc["components"][0]["component"] == int(stats.dominance_order[0])
    assert doc["pca"][-1]["cumulative"] == pytest.approx(float(stats.pca_ratio[:5].sum()))
    for png in doc["figures"].values():
        assert Path(png).parent == out
        with Image.open(png) as im:
            assert im.format == "PNG"


def test_stats_command_tables(stats_cli, capsys):
    assert main(["stats", "--set", "dataset.size=16", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for heading in ("Dominant components", "Explained variance", "Most strongly correlated", "centre distance",
                    "Histograms:", "Correlations:"):
        assert heading in text


def test_stats_command_on_latent_files(tmp_path, capsys):
    rng = np.random.default_rng(6)
    np.save(tmp_path / "tr.npy", rng.normal(size=(60, 5)).astype(np.float32))
    np.save(tmp_path / "he.npy", rng.normal(size=(20, 5)).astype(np.float32))
    rc = main(["stats", "--train-latents", str(tmp_path / "tr.npy"), "--heldout-latents", str(tmp_path / "he.npy"),
               "--device", "cpu", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stats"]["n"] == 60 and Path(doc["stats_file"]) == tmp_path / "tr-stats.safetensors"
    assert all(Path(p).is_file() for p in doc["figures"].values())


def test_stats_command_errors(stats_cli, tmp_path, capsys):
    assert main(["stats", "--set", "gmm.k=3", "--device", "cpu"]) == OptionError.exit_code
    assert "'gmm' is not an owner this command takes; use dataset.OPTION" in capsys.readouterr().err
    assert main(["stats", "--set", "size=16", "--device", "cpu"]) == OptionError.exit_code  # the owner is named
    assert "names no owner; write --set dataset.size=16" in capsys.readouterr().err


def test_stats_takes_a_checkpoint_through_model_and_the_model_seed(stats_cli, tmp_path, capsys):
    stand_in, seen = stats_cli
    checkpoint = tmp_path / "my.safetensors"
    checkpoint.write_bytes(b"")
    assert main(["stats", "--set", "dataset.size=16", "--device", "cpu", "--model", str(checkpoint),
                 "--model-seed", "3", "--json"]) == 0
    assert seen["checkpoint"] == str(checkpoint) and seen["model_spec"] is None and seen["seed"] == 3
    capsys.readouterr()
    assert main(["stats", "--seed", "3"]) == OptionError.exit_code  # the old spelling: one line, what to write
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model-seed N" in err
    assert main(["stats", "--heldout-latents", str(tmp_path / "x.npy"), "--device", "cpu"]) != 0
    assert "needs --train-latents" in capsys.readouterr().err
