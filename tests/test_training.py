"""Training: loss goes down, same seed -> same weights, `aebench train`, and the model cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import use_only_plugins
from PIL import Image

from aebench.caches.models import default_checkpoint_path, resolve_model
from aebench.cli import main
from aebench.dataset import load_dataset
from aebench.errors import AebenchError, CheckpointError, OptionError
from aebench.models import training
from aebench.models.checkpoint import load_checkpoint
from aebench.models.conv_ae import ConvAE
from aebench.models.training import TrainingConfig, augment, mean_image_mse, train_model

TINY = {"in_channels": 1, "image_size": 16, "channels": (16, 32), "latent_dim": 8}


@pytest.fixture(autouse=True)
def model_plugins_only(monkeypatch):
    """Load only the plugins these tests use, so they do not depend on other built-ins."""
    use_only_plugins(monkeypatch, "aebench.models.conv_ae", "aebench.data.orl_faces")


@pytest.fixture(scope="module")
def faces16():
    """The real ORL faces at 16x16 (320 train / 80 held-out): cheap to train on."""
    from aebench.data.orl_faces import OrlFaces

    return OrlFaces({"size": 16}).load(None)


def test_training_reduces_the_loss_and_is_deterministic(faces16):
    module, metrics = train_model(faces16, ConvAE(TINY), training={"batch_size": 16}, epochs=3, seed=3, progress=False)
    again, _ = train_model(faces16, ConvAE(TINY), training={"batch_size": 16}, epochs=3, seed=3, progress=False)
    other, _ = train_model(faces16, ConvAE(TINY), training={"batch_size": 16}, epochs=1, seed=4, progress=False)
    state, state2 = module.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert not torch.equal(state["encoder.0.weight"], other.state_dict()["encoder.0.weight"])
    history = metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert metrics["heldout_mse"] == min(h["heldout_mse"] for h in history)
    assert metrics["heldout_mse"] < metrics["baseline_mse"]
    assert metrics["best_epoch"] == 1 + min(range(3), key=lambda i: history[i]["heldout_mse"])
    assert not module.training
    # the returned weights are the best held-out epoch's, and the metric is what they give
    assert training.reconstruction_mse(module, faces16.heldout, torch.device("cpu")) == pytest.approx(metrics["heldout_mse"], rel=1e-5)


def test_training_leaves_global_state_alone(faces16):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = torch.are_deterministic_algorithms_enabled()
    train_model(faces16, ConvAE(TINY), epochs=1, seed=0, progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_time_budget_stops_after_one_epoch(faces16):
    _, metrics = train_model(faces16, ConvAE(TINY), epochs=50, time_budget_s=1e-6, progress=False)
    assert metrics["epochs_run"] == 1 and metrics["epochs_planned"] == 50


def test_training_rejects_a_model_for_other_images(faces16):
    with pytest.raises(OptionError, match=r"expects images \(1, 32, 32\)"):
        train_model(faces16, ConvAE({**TINY, "image_size": 32}), epochs=1, progress=False)
    with pytest.raises(OptionError, match="train.batch_size must be >= 1"):
        train_model(faces16, ConvAE(TINY), training={"batch_size": 0}, progress=False)


def test_diverged_training_is_a_clear_error(faces16, monkeypatch):
    monkeypatch.setattr(training, "reconstruction_mse", lambda *a, **k: float("nan"))
    with pytest.raises(AebenchError, match=r"diverged .*--set train.lr=0.0001"):
        train_model(faces16, ConvAE(TINY), epochs=1, progress=False)


def test_mean_image_baseline():
    train = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)  # mean image [0.5, 1.0]
    heldout = torch.tensor([[[[255, 0]]]], dtype=torch.uint8)
    assert mean_image_mse(train, heldout) == pytest.approx((0.25 + 1.0) / 2)


def test_augment_flips_and_shifts_deterministically():
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    flipped = augment(x, TrainingConfig(flip=True, max_shift=0), torch.Generator().manual_seed(0))
    for a, b in zip(flipped, x):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    many = torch.zeros(64, 1, 4, 4) + x[:1]
    out = augment(many, TrainingConfig(flip=True, max_shift=0), torch.Generator().manual_seed(0))
    assert 0 < sum(not torch.equal(o, many[0]) for o in out) < 64  # some flipped, some not
    shifted = augment(many, TrainingConfig(flip=False, max_shift=1), torch.Generator().manual_seed(1))
    assert shifted.shape == many.shape
    assert any(not torch.equal(s, many[0]) for s in shifted)
    again = augment(many, TrainingConfig(flip=False, max_shift=1), torch.Generator().manual_seed(1))
    assert torch.equal(shifted, again)


def test_epochs_for_is_automatic_unless_given():
    assert training.epochs_for(320, TrainingConfig()) == training.AUTO_STEPS // 20
    assert training.epochs_for(60000, TrainingConfig()) == training.MIN_AUTO_EPOCHS
    assert training.epochs_for(320, TrainingConfig(epochs=7)) == 7


def test_train_command_writes_checkpoint_and_png(tmp_path, capsys):
    out = tmp_path / "ae" / "model.safetensors"
    args = ["train", "--set", "dataset.size=16", "--set", "model.channels=16,32", "--set", "train.batch_size=16",
            "--latent-dim", "5", "--epochs", "2", "--model-seed", "1", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "Held-out MSE" in printed
    module, sidecar = load_checkpoint(out)
    assert module.latent_dim == 5 and sidecar["seed"] == 1
    assert sidecar["dataset"]["name"] == "orl_faces" and sidecar["dataset"]["options"]["size"] == 16
    assert sidecar["training"]["epochs"] == 2 and sidecar["training"]["batch_size"] == 16
    faces = load_dataset("orl_faces", {"size": 16})
    assert sidecar["metrics"]["baseline_mse"] == pytest.approx(mean_image_mse(faces.train, faces.heldout))
    assert sidecar["metrics"]["epochs_run"] == 2 and len(sidecar["history"]) == 2
    png = out.with_name("model-reconstructions.png")
    with Image.open(png) as im:  # 16 faces: 2 x (originals, reconstructions) rows, with a title and row labels
        assert im.format == "PNG" and im.size[0] > im.size[1] > 4 * 16
        assert np.asarray(im.convert("L")).std() > 20  # faces, not a blank canvas
    assert main(args) == 2  # exists: needs --force
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(args[:1] + ["--set", "optimiser.lr=1"]) == 2
    assert "'optimiser' is not an owner this command takes; use dataset.OPTION, model.OPTION" in capsys.readouterr().err
    assert main(args[:1] + ["--set", "model.latent_dim=3"]) == 2
    assert "pass --latent-dim N instead" in capsys.readouterr().err


def test_resolve_model_trains_once_then_reuses_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(training, "AUTO_STEPS", 10)  # 3 epochs: a tiny default training
    dataset = load_dataset("orl_faces", {"size": 16}, cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="No trained model for orl_faces"):
        resolve_model(dataset, cache_dir=tmp_path, latent_dim=4, train_if_missing=False)
    first = resolve_model(dataset, cache_dir=tmp_path, latent_dim=4, seed=2)
    assert "No trained model for orl_faces" in capsys.readouterr().err
    expected = default_checkpoint_path(dataset, 4, 2, tmp_path)
    assert first.path == expected and expected.parent.name == f"orl_faces-{dataset.fingerprint()}-n4-s2"
    assert first.latent_dim == 4 and first.config["metrics"]["epochs_run"] == 3
    assert json.loads(expected.with_suffix(".json").read_text())["weights_sha256"] == first.checksum
    stamp = expected.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the checkpoint was cached")

    monkeypatch.setattr(training, "train_and_save", no_training)
    second = resolve_model(dataset, cache_dir=tmp_path, latent_dim=4, seed=2, quiet=True)
    assert second.checksum == first.checksum and expected.stat().st_mtime_ns == stamp
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(second.module.decode(z), first.module.decode(z))
