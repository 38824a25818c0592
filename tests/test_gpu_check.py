"""benchmarks/gpu_check.py must not rot: its CPU smoke mode runs every section (ORL-derived RGB faces,
model, throughput with the bf16/channels-last path, k-NN on the device, the whole run with every
built-in sampler) at a tiny size."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_blas_thread():
    """One thread for torch and BLAS while the smoke run lasts: on a busy 2-core machine, idle-waiting
    OpenMP threads make the small EM fits of the gmm sampler ten times slower."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def test_cpu_smoke_runs_every_section(tmp_path, one_blas_thread):
    gpu_check = load_gpu_check()
    status = gpu_check.main(["--cpu-smoke", "--features", "fast", "--n", "8", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert status == 0 and report["mode"] == "cpu-smoke" and report["failed"] == []
    assert report["device"]["device"] == "cpu"
    sections = report["sections"]
    assert {name: s["status"] for name, s in sections.items()} == {
        "throughput": "ok", "knn": "ok", "target": "ok", "all_samplers": "ok"}
    # throughput measured per precision; bf16 changes decoded pixels by at most a few rounding steps
    speed = sections["throughput"]
    assert speed["decode_fp32_images_per_s"] > 0 and speed["features_bf16_images_per_s"] > 0
    assert speed["decode_bf16_max_pixel_change"] <= 8 and "fid_bf16_relative_change" in speed
    assert sections["knn"]["cpu_equal_at_300x200"] is True
    knn = sections["knn"]  # density and coverage use k=5 in both calls
    assert (knn["values_two_k"]["density"], knn["values_two_k"]["coverage"]) == (
        knn["values_k5"]["density"], knn["values_k5"]["coverage"])
    target = sections["target"]
    assert [r["sampler"] for r in target["samplers"]] == ["gaussian", "gmm"] and target["n_per_sampler"] == 8
    assert all(r["status"] == "ok" and "fid" in r and "kid" in r and "precision" in r and "within_target" in r
               for r in target["samplers"])
    rows = sections["all_samplers"]["samplers"]
    from aebench.plugins import get_registry

    assert sorted(r["sampler"] for r in rows) == sorted(get_registry("sampler").names())
    assert all(r["status"] == "ok" and r["fid"] >= 0 and r["decode_s"] >= 0 for r in rows)


def test_without_cuda_the_gpu_check_fails_instead_of_falling_back(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    gpu_check = load_gpu_check()
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().out
    assert not (tmp_path / "gpu_check.json").exists()


def test_sections_that_do_not_fit_the_budget_are_skipped_and_recorded(tmp_path):
    gpu_check = load_gpu_check()
    report = gpu_check.Report(tmp_path / "r.json", budget_s=10.0, mode="test")
    assert report.section("fits", lambda: {"x": 1}, estimate_s=1.0) == {"x": 1}
    assert report.section("too_big", lambda: {"x": 2}, estimate_s=60.0) is None
    assert report.section("raises", lambda: 1 / 0, estimate_s=0.0) is None
    saved = json.loads((tmp_path / "r.json").read_text())  # written after every section
    assert saved["sections"]["fits"]["status"] == "ok" and saved["sections"]["fits"]["x"] == 1
    assert saved["sections"]["too_big"]["status"] == "skipped"
    assert saved["sections"]["raises"]["status"] == "failed" and "ZeroDivisionError" in saved["sections"]["raises"]["error"]


def test_timing_only_inception_has_the_architecture_and_is_labelled(monkeypatch):
    """Without the weights the Inception path is still timed, with the same network, and says so."""
    import aebench.extractors.inception as inception
    from aebench.errors import CheckpointError

    gpu_check = load_gpu_check()

    def no_weights(choice):
        raise CheckpointError("no weights")

    monkeypatch.setattr(inception, "resolve_weights", no_weights)
    name, label = gpu_check.choose_extractor("inception")
    assert name == "inception_timing" and "TIMING ONLY" in label
    from aebench.plugins import get_registry

    cls = get_registry("feature extractor").get(name)
    assert cls.judge is False
    module = cls().build("cpu")
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params > 20_000_000  # the full InceptionV3 trunk, not a toy
    with torch.inference_mode():
        out = module(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    assert out.shape == (1, 2048)


def test_gpu_check_script_uses_the_venv_and_a_hard_time_limit():
    text = (SCRIPT.parent / "gpu_check.sh").read_text()
    assert ".venv/bin/python" in text and "timeout" in text and "300" in text


def test_faces_are_rgb_and_mirrored(tmp_path):
    from PIL import Image

    gpu_check = load_gpu_check()
    assert gpu_check.make_faces(tmp_path, n_faces=2, variants=2) == 4
    plain = torch.from_numpy(np.array(Image.open(tmp_path / "face000_00.png")))
    mirrored = torch.from_numpy(np.array(Image.open(tmp_path / "face000_01.png")))
    assert plain.shape == (64, 64, 3) and mirrored.shape == (64, 64, 3)
    # the second variant is the first one mirrored (up to its own tint): compare the grey structure
    ratio = (mirrored.float().flip(1).mean(2) + 1) / (plain.float().mean(2) + 1)
    assert ratio.std() / ratio.mean() < 0.1
