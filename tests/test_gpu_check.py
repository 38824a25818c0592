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
    assert status == 0 and report["mode"] == "cpu-smoke"
    assert report["device"]["device"] == "cpu"
    # throughput measured on both paths; bf16 changes decoded pixels by at most a rounding step or two
    speed = report["throughput"]
    assert speed["decode_fp32_images_per_s"] > 0 and speed["features_bf16_cl_images_per_s"] > 0
    assert speed["decode_bf16_max_pixel_change"] <= 8
    assert report["knn"]["cpu_equal_at_2000x1000"] is True
    rows = report["run"]["samplers"]
    from aebench.plugins import get_registry

    assert sorted(r["sampler"] for r in rows) == sorted(get_registry("sampler").names())
    assert all(r["status"] == "ok" and r["fid"] >= 0 and r["decode_s"] >= 0 for r in rows)
    assert report["run"]["n_per_sampler"] == 8


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
