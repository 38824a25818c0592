"""The plugin author's guide: every example in docs/examples runs as a plugin, and every hook and every
CLI command is documented in docs/ or the README."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from aebench import hookspecs
from aebench.cli import _load_commands, cli, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
DOCS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def _module(name: str, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _latents(n: int = 600, dim: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2, dim) + 1


@pytest.mark.parametrize("hook", [n for n, _ in inspect.getmembers(hookspecs, inspect.isfunction)
                                  if n.startswith("register_")])
def test_every_hook_is_documented_with_its_parameter(hook):
    assert f"`{hook}" in DOCS_TEXT, f"{hook} is not documented in docs/ or README.md"
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert ":param register:" in doc, f"{hook}'s hookspec does not document its parameter"


def test_every_cli_command_is_documented():
    _load_commands()
    missing = [name for name in cli.commands if f"aebench {name}" not in DOCS_TEXT]
    assert not missing, f"commands not documented in docs/ or README.md: {missing}"


def test_every_plugin_kind_has_a_guide_and_an_example():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for example in ("sampler", "region", "metric", "extractor", "dataset", "architecture"):
        assert (EXAMPLES / f"{example}_plugin.py").is_file()
        assert f"examples/{example}_plugin.py" in guide


def test_sampler_example_keeps_the_contract_and_loads_with_plugin_option(capsys, monkeypatch):
    mod = _module("sampler_plugin", monkeypatch)
    from aebench.stats import compute_stats

    z = _latents()
    sampler = mod.JitterSampler(noise=0.1).fit(z, compute_stats(z))
    a = sampler.sample(500, torch.Generator().manual_seed(1)).latents
    assert a.shape == (500, 6) and torch.equal(a, sampler.sample(500, torch.Generator().manual_seed(1)).latents)
    offsets = a.double() - z[torch.cdist(a.double(), z).argmin(1)]
    assert torch.allclose(offsets.std(0), 0.1 * z.std(0), rtol=0.2)
    assert sampler.fit_info == {"n_train": 600, "noise": 0.1} and len(sampler.plot_axes) == 2
    assert main(["--plugin", str(EXAMPLES / "sampler_plugin.py"), "samplers"]) == 0
    assert "jitter" in capsys.readouterr().out


def test_region_example_accepts_the_calibrated_share(monkeypatch):
    mod = _module("region_plugin", monkeypatch)
    from aebench.stats import compute_stats

    train, heldout, far = _latents(seed=0), _latents(seed=1), _latents(seed=2) * 10
    region = mod.BallRegion().fit(train, compute_stats(train))
    region.calibrate(heldout, 0.9)
    assert region.contains(heldout).double().mean() == pytest.approx(0.9, abs=0.01)
    assert region.contains(far).double().mean() < 0.1


def test_metric_example_sees_collapse_and_spread(monkeypatch):
    mod = _module("metric_plugin", monkeypatch)
    from aebench.metric import FakeSide, RealSide
    from aebench.stats import compute_stats

    z = _latents().float()
    real = RealSide(train_latents=z, heldout_latents=_latents(seed=1).float(), stats=compute_stats(z))
    metric = mod.MeanNormRatio()
    for scale, expected in ((1.0, 1.0), (2.0, 2.0), (0.5, 0.5)):
        out = metric.compute(FakeSide("x", _latents(seed=3).float() * scale), real)
        assert out["mean_norm_ratio"].value == pytest.approx(expected, rel=0.1)
    assert metric.column("mean_norm_ratio").group == "latent"


def test_extractor_example_gives_histograms(monkeypatch):
    mod = _module("extractor_plugin", monkeypatch)
    images = torch.randint(0, 256, (5, 3, 20, 20), dtype=torch.uint8)
    feats = mod.HistogramExtractor().build()(images)
    assert feats.shape == (5, mod.BINS) and torch.allclose(feats.sum(1), torch.ones(5))
    black = mod.HistogramExtractor().build()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    assert black[:, 0].tolist() == [1.0, 1.0]


def test_dataset_and_architecture_examples_train_from_the_cli(tmp_path, capsys):
    out = tmp_path / "mlp" / "model.safetensors"
    rc = main(["--plugin", str(EXAMPLES / "dataset_plugin.py"), "--plugin", str(EXAMPLES / "architecture_plugin.py"),
               "train", "--dataset", "stripes", "--arch", "mlp_ae", "--latent-dim", "4", "--epochs", "2",
               "--set", "train.batch_size=32", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "Training mlp_ae (N=4) on stripes: 320 training, 80 held-out" in printed.out
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["architecture"]["name"] == "mlp_ae" and sidecar["architecture"]["config"]["latent_dim"] == 4
    m = sidecar["metrics"]
    assert math.isfinite(m["heldout_mse"]) and m["heldout_mse"] < m["baseline_mse"] * 2
    from aebench.models.checkpoint import load_checkpoint

    module, _ = load_checkpoint(out)  # rebuilt through the plugin's architecture
    assert type(module).__name__ == "MLPAutoencoder" and module.latent_dim == 4


def test_train_with_an_unknown_architecture_fails_before_any_work(tmp_path, capsys):
    assert main(["train", "--arch", "conv_a", "--out", str(tmp_path / "m.safetensors")]) != 0
    err = capsys.readouterr().err
    assert "Unknown architecture 'conv_a'. Did you mean 'conv_ae'?" in err
    assert not (tmp_path / "m.safetensors").exists()


def test_the_architecture_page_names_every_subpackage():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for folder in sorted(p for p in (ROOT / "framework").iterdir() if (p / "__init__.py").is_file()):
        assert re.search(rf"`aebench\.{folder.name}`", page), f"docs/architecture.md does not explain {folder.name}/"


def test_sampler_region_and_metric_examples_run_together_from_plugin_files(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "run"
    plugins = [a for name in ("sampler", "region", "metric") for a in ("--plugin", str(EXAMPLES / f"{name}_plugin.py"))]
    rc = main([*plugins, "run", "--checkpoint", str(tiny_orl_checkpoint), "--set", "dataset.size=32",
               "--sampler", "jitter", "--regions", "box,ball", "--metrics", "region_hits,mean_norm",
               "--features", "fast", "--n", "64", "--no-figures", "--quiet", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    row = next(r for r in doc["samplers"] if r["name"] == "jitter")
    assert row["status"] == "ok" and row["fit_info"] == {"n_train": 320, "noise": 0.25}  # the declared fit summary
    assert 0.5 < row["metrics"]["hit_ball"]["value"] <= 1 and 0.5 < row["metrics"]["mean_norm_ratio"]["value"] < 2
    info = doc["metric_info"]["mean_norm_ratio"]
    assert info["group"] == "latent" and info["role"] == "info" and info["label"] == "mean norm ratio"
