"""Every cache entry damaged on disk is detected (by its checksum or size), recomputed with one warning
line that names the file, and never used: the cached model (trained again), the encoded latents and
their statistics, the real and decoder-matched image features, and the decoded-image cache of image
folders. (Ladder features share the feature cache; sampler fits are not cached.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_cells import numbers_only
from test_data import make_png_folder

from aebench.cli import main

DAMAGE = ("flip", "truncate")


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":  # cut short, as a full disk or a killed copy would
        path.write_bytes(bytes(data[: len(data) * 2 // 3]))
    else:  # one byte of the data changed, same length: only a checksum can tell
        data[-7] ^= 0x5A
        path.write_bytes(bytes(data))


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Warning: the cached ")]


@pytest.mark.parametrize("how", DAMAGE)
def test_every_damaged_entry_of_a_run_is_recomputed_with_a_warning(tmp_path, tiny_orl_checkpoint, how, capsys):
    model = tmp_path / "model"  # a copy: its latents and statistics are cached beside it
    model.mkdir()
    for name in ("model.safetensors", "model.json"):
        shutil.copy(tiny_orl_checkpoint.parent / name, model / name)
    cache = tmp_path / "cache"
    args = ["run", "--checkpoint", str(model / "model.safetensors"), "--set", "dataset.size=32", "--features", "fast",
            "--n", "40", "--sampler", "gaussian", "--metrics", "fid,latent_fd", "--quiet", "--no-figures",
            "--threads", "1", "--cache-dir", str(cache)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    entries = sorted(model.glob("latents-*.safetensors")) + sorted(model.glob("stats-*.safetensors")) + sorted(
        (cache / "features").glob("*.safetensors"))
    assert len(entries) >= 5  # latents, statistics, and features of real, held-out, reconstructed, decoded images
    for path in entries:
        damage(path, how)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == len(entries), lines  # one line per damaged entry, each naming its file
    for path in entries:
        assert sum(str(path) in line and line.endswith("computing it again.") for line in lines) == 1, (path, lines)
    reasons = " ".join(lines)
    assert ("fail their sha256 checksum" in reasons) if how == "flip" else ("unreadable" in reasons)
    a, b = (json.loads((tmp_path / x / "results.json").read_text()) for x in ("a", "b"))
    assert numbers_only(a) | {"config": None} == numbers_only(b) | {"config": None}  # nothing damaged was used
    assert main([*args, "--out", str(tmp_path / "c")]) == 0  # rewritten whole: a third run warns of nothing
    assert not warnings(capsys.readouterr().err)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_image_cache_entry_is_rebuilt_not_used(tmp_path, how, capsys):
    from aebench.data.image_folder import ImageFolder

    folder = make_png_folder(tmp_path / "pngs")
    cache = tmp_path / "cache"
    first = ImageFolder(path=str(folder), size=8).load(cache).images.clone()
    entry = next((cache / "images").glob("*.npy"))
    damage(entry, how)
    capsys.readouterr()
    again = ImageFolder(path=str(folder), size=8).load(cache).images
    assert torch.equal(again, first)
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and str(entry) in lines[0], lines
    ImageFolder(path=str(folder), size=8).load(cache)
    assert not warnings(capsys.readouterr().err)


def test_a_damaged_cached_model_is_trained_again(tmp_path, monkeypatch, capsys):
    """The model aebench trained into its cache is an entry like the others: a checkpoint that fails its
    checksum is trained again (the same weights: training is deterministic), not refused."""
    import aebench.models.training
    from aebench.caches.models import default_checkpoint_path, resolve_model
    from aebench.dataset import load_dataset

    monkeypatch.setattr(aebench.models.training, "AUTO_STEPS", 20)  # a few steps: the test is about the cache
    dataset = load_dataset("orl_faces", {"size": 16}, cache_dir=tmp_path)
    first = resolve_model(dataset, cache_dir=tmp_path, latent_dim=8, quiet=True)
    path = default_checkpoint_path(dataset, 8, 0, tmp_path)
    damage(path, "flip")
    capsys.readouterr()
    again = resolve_model(dataset, cache_dir=tmp_path, latent_dim=8, quiet=True)
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and str(path) in lines[0] and "fails its checksum" in lines[0], lines
    assert again.checksum == first.checksum
    (path.with_suffix(".json")).write_text("{ not json")  # a damaged sidecar too
    resolve_model(dataset, cache_dir=tmp_path, latent_dim=8, quiet=True)
    lines = warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "not valid JSON" in lines[0], lines


def test_an_entry_without_a_checksum_is_recomputed_once_with_a_note(tmp_path, capsys):
    """An image cache entry from an aebench that wrote no checksum is not called damaged, and not trusted."""
    from aebench.data.image_folder import ImageFolder

    folder = make_png_folder(tmp_path / "pngs")
    cache = tmp_path / "cache"
    first = ImageFolder(path=str(folder), size=8).load(cache).images.clone()
    entry = next((cache / "images").glob("*.npy"))
    entry.with_suffix(".json").unlink()  # as an older aebench left it
    capsys.readouterr()
    assert torch.equal(ImageFolder(path=str(folder), size=8).load(cache).images, first)
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("decoding ")]  # progress
    assert err == [f"Note: the cached decoded images {entry} has no checksum (written by an older aebench); "
                   f"computing it again once."]
    assert entry.with_suffix(".json").is_file()
