"""Models aebench did not train: `--model package.module:factory` imports the module and calls the factory.

The factory takes no arguments, loads its own weights and returns an object with callable `encode`,
`decode` and an int `latent_dim` (see aebench.model.Autoencoder). Its checksum, which keys every
cache derived from it, is the sha256 of the spec string plus the bytes of the module's file.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

import torch

from aebench.errors import AebenchError, CheckpointError


def _parse_spec(spec: str) -> tuple[str, str]:
    module, sep, factory = str(spec).partition(":")
    if not sep or not module.strip() or not factory.strip() or not factory.strip().isidentifier():
        raise CheckpointError(f"Model spec {spec!r} is not 'package.module:factory'; write e.g. --model mypkg.models:load_ae.")
    return module.strip(), factory.strip()


def check_autoencoder(obj: Any, where: str) -> None:
    """Raise a one-line error naming what `obj` lacks to be judged as an autoencoder."""
    missing = [name for name in ("encode", "decode") if not callable(getattr(obj, name, None))]
    latent_dim = getattr(obj, "latent_dim", None)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        missing.append("an int latent_dim >= 1")
    if missing:
        raise CheckpointError(
            f"{where} returned a {type(obj).__name__} without {', '.join(missing)}; return an object with "
            f"encode(images) -> latents, decode(latents) -> images and an int latent_dim."
        )


def external_checksum(spec: str, module: Any) -> str:
    """sha256 of the spec plus the module file's bytes (if the module has a file)."""
    h = hashlib.sha256(str(spec).encode())
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        h.update(Path(file).read_bytes())
    return h.hexdigest()


def load_external(spec: str) -> tuple[Any, str]:
    """Import `module:factory`, call the factory, check the result; returns (model, checksum)."""
    module_name, factory_name = _parse_spec(spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckpointError(f"Cannot import model module '{module_name}' ({exc}); install it or put it on PYTHONPATH.") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise CheckpointError(f"Module '{module_name}' has no callable '{factory_name}'; fix the name after ':' in {spec!r}.")
    try:
        model = factory()
    except AebenchError:
        raise
    except Exception as exc:  # the user's code: report it on one line
        raise CheckpointError(f"Model factory {spec} failed: {type(exc).__name__}: {exc}; fix the factory.") from exc
    check_autoencoder(model, f"Model factory {spec}")
    return model, external_checksum(spec, module)


class InputDeviceAdapter:
    """A user's model that cannot be moved to the run's device: its encode/decode get their inputs on
    `input_device` (where the model computes) and hand results back as they come; every other
    attribute is the model's own."""

    def __init__(self, model: Any, input_device: torch.device):
        self.model = model
        self.input_device = torch.device(input_device)
        self.latent_dim = model.latent_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images.to(self.input_device))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.model.decode(latents.to(self.input_device))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)


def _device_mismatch(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, TypeError, ValueError)) and (
        "device" in text or "cuda" in text or "numpy" in text)


def place_on_device(model: Any, device: torch.device | str) -> Any:
    """Put a user's model on the run's `device` where possible and return what the run should call:

    1. an `nn.Module`, or any object with a `to(device)` method, is moved with it;
    2. otherwise the `nn.Module`s among its attributes are moved (the common wrapper around a network);
    3. otherwise, off the CPU, one decode on the device is tried: if the model rejects device tensors,
       it is wrapped so that it gets CPU inputs (it then computes on the CPU, slower but correct)."""
    device = torch.device(device)
    if isinstance(model, torch.nn.Module):
        return model.to(device).eval()
    mover = getattr(model, "to", None)
    if callable(mover):
        moved = mover(device)
        model = model if moved is None else moved
        if hasattr(model, "eval") and callable(model.eval):
            model.eval()
        return model
    modules = [value for value in vars(model).values() if isinstance(value, torch.nn.Module)] if hasattr(model, "__dict__") else []
    for module in modules:
        module.to(device).eval()
    if modules or device.type == "cpu":
        return model
    try:
        with torch.inference_mode():
            model.decode(torch.zeros(1, int(model.latent_dim), device=device))
    except Exception as exc:  # the user's code: any failure that looks like "wrong device" means CPU inputs
        if _device_mismatch(exc):
            return InputDeviceAdapter(model, torch.device("cpu"))
        raise CheckpointError(f"The model's decode failed on {device}: {type(exc).__name__}: {str(exc)[:200]}; "
                              f"fix its decode or run with --device cpu.") from None
    return model
