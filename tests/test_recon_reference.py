"""The decoder-matched image reference: which latents it decodes (count matched to n, a fixed subset,
disjoint from the reconstruction row where the data allows), its features cached per model and reused,
and the recon keys on every row of a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import aebench.feature_extractor
from aebench.run.config import RunConfig, SamplerSpec
from aebench.run.reference_sets import FeatureBank, recon_reference_rows
from aebench.run.setup import prepare, subset_index


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small conv AE trained for one epoch on 32x32 ORL faces (seconds on a CPU)."""
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=tmp_path_factory.mktemp("recon-data"))
    out = tmp_path_factory.mktemp("recon-model") / "model.safetensors"
    train_and_save(dataset, out, latent_dim=8, model_options={"channels": (8, 16, 32)}, epochs=1, seed=0,
                   progress=False)
    return out


def config(checkpoint: Path, tmp_path: Path, **extra) -> RunConfig:
    values = dict(dataset="orl_faces", dataset_options={"size": 32}, checkpoint=str(checkpoint), n=40,
                  samplers=[SamplerSpec("gaussian")], metrics=["fid", "kid", "latent_fd"], features="fast",
                  cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "out"), figures=False)
    values.update(extra)
    cfg = RunConfig(**values)
    cfg.check()
    return cfg


def count_extractions(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = aebench.feature_extractor.extract_features

    def counting(module, images, *args, **kwargs):
        calls.append(int(images.shape[0]))
        return original(module, images, *args, **kwargs)

    monkeypatch.setattr(aebench.feature_extractor, "extract_features", counting)
    return calls


def test_recon_reference_rows_fixed_disjoint_and_counted():
    rows, disjoint = recon_reference_rows(100, 30)
    assert rows.numel() == 30 and disjoint and torch.equal(rows, torch.sort(rows).values)
    assert torch.equal(rows, recon_reference_rows(100, 30)[0])  # the same subset in every run
    exclude = subset_index(100, 30)
    rows, disjoint = recon_reference_rows(100, 30, exclude)
    assert disjoint and not torch.isin(rows, exclude).any() and rows.numel() == 30
    rows, disjoint = recon_reference_rows(50, 30, subset_index(50, 30))  # only 20 others: overlap, and said so
    assert not disjoint and rows.numel() == 30 and rows.unique().numel() == 30
    assert recon_reference_rows(10, 30)[0].numel() == 10  # a split smaller than n: all of it


def test_feature_bank_gathers_subsets_by_index():
    bank = FeatureBank()
    feats = torch.arange(10, dtype=torch.float32)[:, None] * torch.ones(1, 3)
    calls = []
    got = bank.get("image", torch.tensor([9, 2, 5, 7]), lambda: calls.append(1) or feats[[9, 2, 5, 7]])
    assert len(calls) == 1 and torch.equal(got, feats[[9, 2, 5, 7]])
    again = bank.get("image", torch.tensor([5, 9]), lambda: calls.append(1) or feats[[5, 9]])
    assert len(calls) == 1 and torch.equal(again, feats[[5, 9]]) and bank.reused == 2
    bank.get("image", torch.tensor([5, 3]), lambda: calls.append(1) or feats[[5, 3]])  # 3 is new
    bank.get("decoded-train", torch.tensor([5]), lambda: calls.append(1) or feats[[5]])  # another source
    assert len(calls) == 3


def test_prepare_fills_the_decoder_matched_reference_and_caches_it(checkpoint, tmp_path, monkeypatch):
    calls = count_extractions(monkeypatch)
    setup = prepare(config(checkpoint, tmp_path), quiet=True)
    real = setup.real
    assert real.reference == "train"  # 80 held-out ORL faces are too few to be the reference
    assert real.recon_features.shape == (40, real.features.shape[1]) and real.recon_latents.shape == (40, 8)
    info = real.recon_info
    assert info["split"] == "train" and info["n"] == 40 and info["disjoint_from_reconstruction_row"]
    rows, _ = recon_reference_rows(real.train_latents.shape[0], 40)
    assert torch.equal(real.recon_latents, real.train_latents[rows])
    # the features are those of the decoded latents
    from aebench.models.encoding import decode_latents

    decoded = decode_latents(setup.model.module, real.recon_latents)
    expected = aebench.feature_extractor.extract_features(setup.extractor.module, decoded, 64, "cpu")
    torch.testing.assert_close(real.recon_features, expected, rtol=1e-5, atol=1e-5)
    first = sum(calls[:-1])  # the last call is this test's own check
    assert first == real.features.shape[0] + 40 + 40 + 40  # train images, held-out images and decodes, reference
    calls.clear()
    again = prepare(config(checkpoint, tmp_path), quiet=True)
    assert calls == []  # everything from the feature cache
    assert torch.equal(again.real.recon_features, real.recon_features)
    other_n = prepare(config(checkpoint, tmp_path, n=24), quiet=True)  # count follows n: a new entry
    assert other_n.real.recon_features.shape[0] == 24 and calls


def test_heldout_reference_avoids_the_reconstruction_rows(checkpoint, tmp_path, monkeypatch):
    setup = prepare(config(checkpoint, tmp_path, reference="heldout", n=32), quiet=True)
    real = setup.real
    assert real.recon_info["split"] == "heldout" and real.recon_info["disjoint_from_reconstruction_row"]
    recon_rows = subset_index(real.heldout_latents.shape[0], 32)
    rows, _ = recon_reference_rows(real.heldout_latents.shape[0], 32, recon_rows)
    assert not torch.isin(rows, recon_rows).any()
    assert torch.equal(real.recon_latents, real.heldout_latents[rows])
    # 80 held-out latents cannot give 48 + 48 disjoint ones: the overlap is recorded, and the shared decoded
    # images are featurised once (gathered from the reconstruction row's features)
    calls = count_extractions(monkeypatch)
    setup = prepare(config(checkpoint, tmp_path, reference="heldout", n=80, cache_dir=str(tmp_path / "fresh")),
                    quiet=True)
    assert not setup.real.recon_info["disjoint_from_reconstruction_row"]
    assert calls == [80, 80, 80]  # held-out images, training images, reconstructions: no fourth set
    recon_row = next(r for r in setup.references if r.name == "reconstruction")
    assert torch.equal(setup.real.recon_features, recon_row.features)


def test_run_reports_recon_keys_for_samplers_and_reference_rows(checkpoint, tmp_path):
    from aebench.run.runner import run_benchmark

    cfg = config(checkpoint, tmp_path, samplers=[SamplerSpec("gaussian"), SamplerSpec("origin_line")],
                 metrics=["fid", "fid_inf", "kid"])
    doc = run_benchmark(cfg, quiet=True)
    assert doc["features"]["recon_reference"]["n"] == 40
    for row in doc["references"] + doc["samplers"]:
        assert {"fid", "fid_recon", "kid", "kid_recon", "fid_inf", "fid_inf_recon"} <= set(row["metrics"]), row["name"]
        assert row["metrics"]["fid_recon"]["info"]["reference"] == "decoded train latents"
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["features"]["recon_reference"]["split"] == "train"
