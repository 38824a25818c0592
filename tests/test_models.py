"""The conv_ae architecture, checkpoint I/O and its errors, external models, encode/decode helpers."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import use_only_plugins

from aebench.caches.models import resolve_model
from aebench.dataset import ImageDataset, default_latent_dim
from aebench.errors import AebenchError, CheckpointError, OptionError
from aebench.models import checkpoint as ckpt
from aebench.models.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from aebench.models.conv_ae import ConvAE, ConvAutoencoder
from aebench.models.encoding import decode_latents, encode_images
from aebench.models.external import load_external

TINY = {"in_channels": 1, "image_size": 16, "channels": (4, 8), "latent_dim": 6}


@pytest.fixture(autouse=True)
def model_plugins_only(monkeypatch):
    """Load only the plugins these tests use, so they do not depend on other built-ins."""
    use_only_plugins(monkeypatch, "aebench.models.conv_ae", "aebench.data.orl_faces", "aebench.data.fashion_mnist",
                     "aebench.data.image_folder")


def tiny_model(seed: int = 0, **overrides) -> ConvAutoencoder:
    torch.manual_seed(seed)
    return ConvAE({**TINY, **overrides}).build().eval()


def synthetic_dataset(n: int = 12, shape=(1, 16, 16), seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    return ImageDataset("synthetic", images, torch.arange(n - 4), torch.arange(n - 4, n))


@pytest.fixture
def saved(tmp_path) -> tuple[Path, ConvAutoencoder]:
    model = tiny_model()
    path = save_checkpoint(tmp_path / "m" / "model.safetensors", model, {"seed": 0})
    return path, model


# -- architecture ---------------------------------------------------------------------------------


def test_model_shapes_and_output_range():
    model = tiny_model()
    x = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
    assert z.shape == (5, 6) and y.shape == (5, 1, 16, 16)
    assert model.latent_dim == 6 and model.image_shape == (1, 16, 16)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert isinstance(ConvAE(TINY).build().encoder[1], torch.nn.BatchNorm2d)
    assert isinstance(ConvAE({**TINY, "norm": "group"}).build().encoder[1], torch.nn.GroupNorm)


def test_bad_image_size_is_a_clear_option_error():
    with pytest.raises(OptionError, match=r"image_size 60 is not divisible by 2\*\*3 = 8"):
        ConvAE({"image_size": "60", "channels": "8,16,32"})
    with pytest.raises(OptionError, match="channels"):
        ConvAE({"channels": "0,16"})


def test_config_for_fits_the_image_and_uses_per_dataset_latent_dims():
    orl = ConvAE.config_for((1, 64, 64), dataset_name="orl_faces")
    assert orl["channels"] == (32, 64, 128, 256) and orl["latent_dim"] == 64
    fashion = ConvAE.config_for((1, 28, 28), dataset_name="fashion_mnist")
    assert fashion["channels"] == (32, 64) and fashion["latent_dim"] == 32
    ConvAE(fashion).build()  # 28 = 7 * 2**2 builds
    assert default_latent_dim("celeba") == 256
    assert ConvAE.config_for((3, 64, 64), 17)["latent_dim"] == 17
    with pytest.raises(OptionError, match="square"):
        ConvAE.config_for((1, 64, 48))


# -- checkpoints ----------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_outputs(saved):
    path, model = saved
    loaded, sidecar = load_checkpoint(path)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    z = torch.randn(3, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), model.encode(x))
        assert torch.equal(loaded.decode(z), model.decode(z))
    assert not loaded.training
    config = {**TINY, "channels": [4, 8], "norm": "batch", "activation": "leaky_relu"}
    assert sidecar["architecture"] == {"name": "conv_ae", "config": config}
    assert sidecar["seed"] == 0 and sidecar["weights_sha256"] == ckpt.sha256_file(path)
    assert set(sidecar["versions"]) == {"aebench", "torch", "python"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.safetensors"]
    assert load_checkpoint(path.parent)[1] == sidecar  # a folder works too


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_random_bytes_are_reported_as_corrupt(saved):
    path, _ = saved
    path.write_bytes(torch.randint(0, 256, (4000,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_truncated_file_is_reported(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_changed_weights_fail_the_checksum(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor: still a valid safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_checkpoint(path)


def test_missing_and_invalid_sidecar(saved):
    path, _ = saved
    side = sidecar_path(path)
    side.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    side.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not an aebench-checkpoint/1 sidecar"):
        load_checkpoint(path)
    side.unlink()
    with pytest.raises(CheckpointError, match="sidecar .* is missing"):
        load_checkpoint(path)


def _edit_sidecar(path: Path, edit) -> None:
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    edit(meta)
    side.write_text(json.dumps(meta))


def test_architecture_mismatch(saved):
    path, _ = saved
    _edit_sidecar(path, lambda m: m["architecture"]["config"].update(latent_dim=7))
    with pytest.raises(CheckpointError, match=r"does not match its architecture 'conv_ae' "
                                              r"\(shape mismatch encoder.7.weight \(6, 128\) vs \(7, 128\)"):
        load_checkpoint(path)
    _edit_sidecar(path, lambda m: m["architecture"]["config"].update(latent_dim=6, channels=[4, 8, 16]))
    with pytest.raises(CheckpointError, match="missing .*unexpected"):
        load_checkpoint(path)
    _edit_sidecar(path, lambda m: m["architecture"]["config"].update(image_size=18, channels=[4, 8]))
    with pytest.raises(CheckpointError, match="invalid 'conv_ae' config.*not divisible"):
        load_checkpoint(path)


def test_unknown_architecture(saved):
    path, _ = saved
    _edit_sidecar(path, lambda m: m["architecture"].update(name="vq_vae"))
    with pytest.raises(CheckpointError, match="needs architecture 'vq_vae'.*available: conv_ae"):
        load_checkpoint(path)


def test_failed_save_leaves_no_files(tmp_path, monkeypatch):
    def broken_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", broken_save)
    from aebench.errors import DiskFullError

    with pytest.raises(DiskFullError, match="The disk is full: no space left to write model.safetensors"):
        save_checkpoint(tmp_path / "model.safetensors", tiny_model(), {})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    with pytest.raises(TypeError, match="not JSON serialisable"):
        save_checkpoint(tmp_path / "model.safetensors", tiny_model(), {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_resolve_model_from_checkpoint_checks_the_image_shape(saved):
    path, _ = saved
    loaded = resolve_model(synthetic_dataset(), checkpoint=path)
    assert loaded.latent_dim == 6 and loaded.image_shape == (1, 16, 16) and loaded.path == path
    assert loaded.checksum == ckpt.sha256_file(path) and loaded.cache_dir == path.parent
    with pytest.raises(CheckpointError, match=r"expects images \(1, 16, 16\) but data set synthetic has \(3, 16, 16\)"):
        resolve_model(synthetic_dataset(shape=(3, 16, 16)), checkpoint=path)
    with pytest.raises(CheckpointError, match="latent dimension 6, not the 8"):
        resolve_model(None, checkpoint=path, latent_dim=8)
    with pytest.raises(CheckpointError, match="only one of"):
        resolve_model(None, checkpoint=path, model_spec="a:b")
    with pytest.raises(CheckpointError, match="No model given"):
        resolve_model(None)


# -- external models ------------------------------------------------------------------------------


EXTERNAL = textwrap.dedent('''
    import torch

    class Halves:
        latent_dim = 4
        image_shape = (1, 16, 16)
        def encode(self, x):
            return x.flatten(1)[:, :4] * 2
        def decode(self, z):
            return z.mean(1)[:, None, None, None].expand(-1, 1, 16, 16).clamp(0, 1)

    class NoDecode:
        latent_dim = "four"
        def encode(self, x):
            return x

    def good():
        return Halves()

    def incomplete():
        return NoDecode()

    def broken():
        raise RuntimeError("weights file gone")

    not_callable = 3
''')


@pytest.fixture
def external_module(tmp_path, monkeypatch):
    name = f"ext_ae_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EXTERNAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, tmp_path / f"{name}.py"
    sys.modules.pop(name, None)


def test_external_model_loads_and_is_checksummed(external_module, tmp_path):
    name, file = external_module
    loaded = resolve_model(synthetic_dataset(), model_spec=f"{name}:good", cache_dir=tmp_path / "cache")
    assert loaded.latent_dim == 4 and loaded.path is None and loaded.config == {"external": f"{name}:good"}
    assert loaded.cache_dir == tmp_path / "cache" / "external" / loaded.checksum[:16]
    z = encode_images(loaded, synthetic_dataset().images)
    assert z.shape == (12, 4) and z.dtype == torch.float32
    _, same = load_external(f"{name}:good")
    assert same == loaded.checksum
    file.write_text(EXTERNAL + "\n# changed\n")
    sys.modules.pop(name)
    _, changed = load_external(f"{name}:good")
    assert changed != loaded.checksum


@pytest.mark.parametrize("factory, message", [
    ("incomplete", "without decode, an int latent_dim"),
    ("broken", "failed: RuntimeError: weights file gone"),
    ("missing", "has no callable 'missing'"),
    ("not_callable", "has no callable 'not_callable'"),
])
def test_external_model_errors(external_module, factory, message):
    name, _ = external_module
    with pytest.raises(CheckpointError, match=message):
        load_external(f"{name}:{factory}")


def test_external_spec_errors(external_module):
    with pytest.raises(CheckpointError, match="not 'package.module:factory'"):
        load_external("no_colon_here")
    with pytest.raises(CheckpointError, match="Cannot import model module 'surely_not_a_module_xyz'"):
        load_external("surely_not_a_module_xyz:f")
    name, _ = external_module
    with pytest.raises(CheckpointError, match=r"expects images \(1, 16, 16\) but data set synthetic has \(1, 8, 8\)"):
        resolve_model(synthetic_dataset(shape=(1, 8, 8)), model_spec=f"{name}:good")


# -- encode / decode helpers -----------------------------------------------------------------------


def test_encode_decode_helpers_shapes_dtypes_and_batching():
    model = tiny_model()
    images = synthetic_dataset(n=10).images
    z = encode_images(model, images, batch_size=3)
    assert z.shape == (10, 6) and z.dtype == torch.float32 and z.device.type == "cpu"
    assert torch.allclose(z, encode_images(model, images, batch_size=256), atol=1e-6)
    with torch.no_grad():
        expected = model.encode(images.float() / 255)
    assert torch.allclose(z, expected, atol=1e-6)
    out = decode_latents(model, z, batch_size=4, description="decode")
    assert out.shape == (10, 1, 16, 16) and out.dtype == torch.uint8
    with torch.no_grad():
        manual = (model.decode(z) * 255).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(out, manual)
    assert torch.equal(decode_latents(model, z.numpy()), out)
    assert decode_latents(model, torch.zeros(0, 6)).shape == (0, 1, 16, 16)


def test_encode_decode_helpers_reject_bad_input():
    model = tiny_model()
    with pytest.raises(AebenchError, match="5 components but the model's latent dimension is 6"):
        decode_latents(model, torch.zeros(2, 5))
    with pytest.raises(AebenchError, match="NaN"):
        decode_latents(model, torch.full((2, 6), float("nan")))
    with pytest.raises(AebenchError, match=r"float tensor \[n, N\]"):
        decode_latents(model, torch.zeros(6))
    with pytest.raises(AebenchError, match="uint8 tensor"):
        encode_images(model, torch.rand(2, 1, 16, 16))
    with pytest.raises(AebenchError, match=r"do not fit the model's \(1, 16, 16\)"):
        encode_images(model, torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
