"""A useless model is flagged before any sampler runs: its held-out reconstruction error against the
mean-image baseline is known for every model (from an aebench checkpoint's sidecar, or measured once
and cached for a model brought with --model package.module:factory); a model worse than the baseline
gets a warning in the terminal (before the samplers and again under the table), the reports and the
results (model.reconstruction), and --strict makes it an error, exit 2, with the numbers."""

from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest
import torch

from aebench.cli import main
from aebench.results.schema import check_results

EXTERNAL = textwrap.dedent('''
    import torch
    from aebench.models.conv_ae import ConvAEConfig, ConvAutoencoder

    def untrained():
        """A conv AE for 32x32 grey faces straight from its initialisation: it has learnt nothing."""
        torch.manual_seed(0)
        return ConvAutoencoder(ConvAEConfig(in_channels=1, image_size=32, channels=(8, 16, 32), latent_dim=16)).eval()
''')

WARNING = re.compile(r"^Warning: The model reconstructs held-out images worse than the mean training image does "
                     r"\(held-out MSE (\S+) vs (\S+) for the mean image, (\d+) held-out images\): it has not learnt "
                     r"these images, so every sampler's decoded images will be poor and the comparison says little\. "
                     r"Check or train the model; --strict makes this an error\.$")


@pytest.fixture
def untrained_model(tmp_path, monkeypatch):
    name = f"untrained_ae_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EXTERNAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{name}:untrained"
    sys.modules.pop(name, None)


def _args(out, cache, *model):
    return ["run", *model, "--set", "dataset.size=32", "--features", "fast", "--n", "32", "--sampler", "gaussian",
            "--metrics", "fid,latent_fd", "--quiet", "--threads", "1", "--no-figures", "--out", str(out),
            "--cache-dir", str(cache)]


def test_an_untrained_external_model_is_flagged_everywhere_and_strict_refuses_it(tmp_path, untrained_model, capsys,
                                                                                monkeypatch):
    cache = tmp_path / "cache"
    assert main(_args(tmp_path / "out", cache, "--model", untrained_model)) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if WARNING.match(line)]
    assert len(warnings) == 2, err  # before the samplers, and again under the table
    print("\n".join(warnings[:1]))  # what the user sees (pytest -s shows it)
    heldout, baseline, n = WARNING.match(warnings[0]).groups()
    assert float(heldout) > float(baseline) and int(n) == 80  # ORL holds 80 faces out

    doc = check_results(json.loads((tmp_path / "out" / "results.json").read_text()))
    check = doc["model"]["reconstruction"]
    assert check["worse_than_baseline"] is True and check["source"] == "measured" and check["n"] == 80
    assert f"{check['heldout_mse']:.3g}" == heldout and f"{check['baseline_mse']:.3g}" == baseline
    assert check["heldout_mse"] > 1.5 * check["baseline_mse"]  # untrained: 0.038 vs 0.022, clearly worse, no near tie
    for report in ("report.md", "report.html"):
        assert "worse than the mean training image" in (tmp_path / "out" / report).read_text()

    # measured once: the second run reads the cached numbers (no reconstruction computed)
    import aebench.run.model_check as model_check

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(model_check, "measure", no_measuring)
    capsys.readouterr()
    assert main([*_args(tmp_path / "strict", cache, "--model", untrained_model), "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"Error: The model reconstructs held-out images worse than the mean training image does (held-out "
                   f"MSE {heldout} vs {baseline} for the mean image, 80 held-out images); train or fix the model, "
                   f"or drop --strict to benchmark it anyway.")
    assert not (tmp_path / "strict").exists()  # refused before any sampler, nothing written


def test_a_useful_model_passes_strict_with_the_numbers_of_its_sidecar(tmp_path, tiny_model, capsys):
    checkpoint, cache = tiny_model  # four epochs: held-out MSE 0.0166 against 0.0219 for the mean image
    assert main([*_args(tmp_path / "out", cache, "--checkpoint", str(checkpoint)), "--strict"]) == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("Warning: The model")]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    check = doc["model"]["reconstruction"]
    sidecar = json.loads(checkpoint.with_suffix(".json").read_text())["metrics"]
    assert check == {"heldout_mse": sidecar["heldout_mse"], "baseline_mse": sidecar["baseline_mse"], "n": 80,
                     "source": "checkpoint", "worse_than_baseline": False}
    assert check["heldout_mse"] < 0.9 * check["baseline_mse"]


def test_the_measurement_agrees_with_training(tiny_model):
    """Measuring an aebench checkpoint gives the numbers its training recorded (same images, same
    definition), so the sidecar and the measurement are one yardstick."""
    from aebench.caches.models import resolve_model
    from aebench.dataset import load_dataset
    from aebench.run.model_check import measure

    checkpoint, cache = tiny_model
    dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=cache)
    model = resolve_model(dataset, checkpoint=checkpoint)
    measured = measure(model, dataset, torch.device("cpu"))
    sidecar = model.config["metrics"]
    assert measured["n"] == 80
    assert measured["heldout_mse"] == pytest.approx(sidecar["heldout_mse"], rel=1e-4)
    assert measured["baseline_mse"] == pytest.approx(sidecar["baseline_mse"], rel=1e-6)
