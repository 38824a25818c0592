"""Shared fixtures: every test gets its own aebench cache folder and a fresh plugin manager."""

from __future__ import annotations

import pytest
import torch

import aebench.plugins


def use_only_plugins(monkeypatch, *modules: str) -> None:
    """Load only these built-in plugin modules (and no installed ones), so a test file does not depend
    on unrelated plugins."""
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", tuple(modules))
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models and small matrices run fastest on one thread, and CI's two cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_aebench(tmp_path_factory, monkeypatch):
    """AEBENCH_CACHE_DIR in a temporary folder, matplotlib without a display, plugins reloaded."""
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("aebench-cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    aebench.plugins.reset()
    yield
    aebench.plugins.reset()


@pytest.fixture(scope="session")
def tiny_orl_checkpoint(tmp_path_factory):
    """A conv AE with N=16 trained for two epochs on 32x32 ORL faces (seconds on a CPU), shared by the
    tests that need a real model but not a good one (use with `--set dataset.size=32`)."""
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    cache = tmp_path_factory.mktemp("tiny-orl-cache")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=cache)
        out = tmp_path_factory.mktemp("tiny-orl-model") / "model.safetensors"
        train_and_save(dataset, out, latent_dim=16, model_options={"channels": (8, 16, 32)}, epochs=2,
                       seed=0, progress=False)
    finally:
        torch.set_num_threads(before)
    return out
