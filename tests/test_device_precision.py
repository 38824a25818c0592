"""Device choice and precision: cuda:N checked up front, TF32 off for fp32 and restored, features left
on the run's device, and a user's model moved to the device where it can be."""

from __future__ import annotations

import pytest
import torch

from aebench.errors import AebenchError
from aebench.infra.device import check_precision, precision_mode, resolve_device


def test_a_gpu_index_beyond_the_count_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(AebenchError, match=r"has 2 CUDA GPU\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_cuda_without_a_gpu_and_unknown_devices_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AebenchError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    with pytest.raises(AebenchError, match="not supported|Unknown device"):
        resolve_device("meta")
    with pytest.raises(AebenchError, match="Unknown device"):
        resolve_device("gpu7")


def _tf32_flags():
    b = torch.backends
    return b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision


def test_fp32_switches_tf32_off_and_restores_the_flags():
    before = _tf32_flags()
    with precision_mode("cpu", "fp32"):
        assert _tf32_flags() == ("ieee", "ieee")
    assert _tf32_flags() == before
    with precision_mode("cpu", "tf32"):
        assert _tf32_flags() == ("tf32", "tf32")
    assert _tf32_flags() == before
    with pytest.raises(ValueError):
        with precision_mode("cpu", "fp32"):
            raise ValueError("restored on errors too")
    assert _tf32_flags() == before


def test_bf16_autocasts_and_precision_is_checked():
    with precision_mode("cpu", "bf16"):
        out = torch.nn.functional.linear(torch.randn(4, 8), torch.randn(3, 8))
    assert out.dtype == torch.bfloat16
    with precision_mode("cpu", "fp32"):
        assert torch.nn.functional.linear(torch.randn(4, 8), torch.randn(3, 8)).dtype == torch.float32
    with pytest.raises(AebenchError, match="tf32 exists on CUDA GPUs only"):
        check_precision("tf32", "cpu")
    with pytest.raises(AebenchError, match="Unknown precision"):
        check_precision("fp8")
    # measured: bf16 moved FID by more than 0.1%, so runs refuse it (precision_mode keeps it for timing)
    with pytest.raises(AebenchError, match="not offered.*0.1%"):
        check_precision("bf16", "cpu")
    assert check_precision("fp32", "cpu") == "fp32" and check_precision("tf32") == "tf32"


def test_features_stay_on_the_device_they_were_computed_on():
    """extract_features must not send features to the CPU: the metrics run where they are ("meta"
    stands in for a GPU here: it has no data, only a device)."""
    from aebench.extractors.fast import GreyPixels
    from aebench.feature_extractor import extract_features

    module = GreyPixels(4).to("meta")
    images = torch.zeros(10, 1, 8, 8, dtype=torch.uint8)
    out = extract_features(module, images, 3, "meta")
    assert out.device.type == "meta" and out.shape == (10, 16)
    cpu = extract_features(GreyPixels(4), images, 3, "cpu")
    assert cpu.device.type == "cpu" and torch.equal(cpu, torch.zeros(10, 16))


# -- a user's own model --------------------------------------------------------------------------------

class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 16)


class _Wrapper:
    """Not an nn.Module: holds its network in an attribute."""

    latent_dim = 4

    def __init__(self):
        self.net = _Net()

    def encode(self, x):
        return x.flatten(1)[:, :4]

    def decode(self, z):
        return torch.sigmoid(self.net.lin(z)).reshape(-1, 1, 4, 4)


class _HasTo(_Wrapper):
    def __init__(self):
        super().__init__()
        self.moved_to = None

    def to(self, device):
        self.moved_to = torch.device(device)
        self.net.to(device)
        return self


class _CpuOnly:
    """A model that computes with numpy: it cannot take device tensors."""

    latent_dim = 4

    def encode(self, x):
        return torch.from_numpy(x.numpy().reshape(x.shape[0], -1)[:, :4].copy())

    def decode(self, z):
        import numpy as np

        return torch.from_numpy(1 / (1 + np.exp(-np.repeat(z.numpy(), 4, axis=1)))).reshape(-1, 1, 4, 4)


def test_a_model_with_a_to_method_is_moved_with_it():
    from aebench.models.external import place_on_device

    model = _HasTo()
    assert place_on_device(model, "meta") is model
    assert model.moved_to == torch.device("meta") and model.net.lin.weight.device.type == "meta"


def test_the_networks_inside_a_plain_object_are_moved():
    from aebench.models.external import place_on_device

    model = _Wrapper()
    assert place_on_device(model, "meta") is model
    assert model.net.lin.weight.device.type == "meta" and not model.net.training


def test_a_model_that_rejects_device_tensors_gets_cpu_inputs():
    from aebench.models.external import InputDeviceAdapter, place_on_device

    placed = place_on_device(_CpuOnly(), "meta")  # numpy cannot read a device tensor: the probe fails
    assert isinstance(placed, InputDeviceAdapter) and placed.latent_dim == 4
    out = placed.decode(torch.zeros(2, 4))
    assert out.shape == (2, 1, 4, 4) and torch.allclose(out, torch.full_like(out, 0.5))
    assert place_on_device(_CpuOnly(), "cpu").__class__ is _CpuOnly  # nothing to do on the CPU


def test_precision_keys_the_feature_cache_and_is_recorded(tmp_path, monkeypatch):
    """fp32 and tf32 features never share a cache entry, and results say which one made the numbers
    (tf32 is allowed on the CPU here, where it computes as fp32, to exercise the cache key)."""
    import json

    import aebench.infra.device

    monkeypatch.setattr(aebench.infra.device, "check_precision", lambda precision, device=None: precision)
    from aebench.cli import main
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    cache = tmp_path / "cache"
    dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=cache)
    ckpt = tmp_path / "model.safetensors"
    train_and_save(dataset, ckpt, latent_dim=8, model_options={"channels": (8, 16)}, epochs=1, progress=False)
    counts, docs = [], []
    for precision in ("fp32", "tf32", "fp32"):
        out = tmp_path / f"out-{len(counts)}"
        assert main(["run", "--checkpoint", str(ckpt), "--set", "dataset.size=32", "--features", "fast", "--n", "24",
                     "--sampler", "gaussian", "--metrics", "fid", "--quiet", "--no-figures", "--precision", precision,
                     "--cache-dir", str(cache), "--out", str(out)]) == 0
        counts.append(len(list((cache / "features").glob("*.safetensors"))))
        docs.append(json.loads((out / "results.json").read_text()))
    assert counts[1] == 2 * counts[0] and counts[2] == counts[1]  # tf32 made its own entries; fp32 reused its own
    assert [d["features"]["precision"] for d in docs] == ["fp32", "tf32", "fp32"]
    assert all(d["features"]["device"] == "cpu" and d["environment"]["precision"] == d["features"]["precision"]
               for d in docs)
    assert docs[0]["samplers"][0]["metrics"]["fid"]["value"] == docs[2]["samplers"][0]["metrics"]["fid"]["value"]


@pytest.mark.parametrize("precision, message", [("tf32", "tf32 exists on CUDA GPUs only"),
                                                ("bf16", "not offered"), ("fp64", "--precision must be one of")])
def test_unavailable_precisions_are_refused_before_any_work(tmp_path, capsys, precision, message):
    from aebench.cli import main

    rc = main(["run", "--sampler", "gaussian", "--device", "cpu", "--precision", precision, "--features", "fast",
               "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and message in err and err.startswith("Error:") and "\n" not in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_knn_metrics_run_inside_a_tf32_run_and_leave_its_flags_alone():
    """k-NN products insist on true float32; inside `--precision tf32` (the per-backend flags set) the
    legacy `set_float32_matmul_precision` made torch refuse to read either flag (PRDC failed on the GPU)."""
    import torch

    from aebench.maths.prdc import compute_prdc

    real, fake = torch.randn(60, 8, generator=torch.Generator().manual_seed(0)), torch.randn(50, 8)
    expected = compute_prdc(real, fake, 3)
    with precision_mode("cpu", "tf32"):
        assert compute_prdc(real, fake, 3) == expected
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"  # the run's own mode, restored after PRDC
