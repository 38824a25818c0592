"""Checkpoint I/O without pickles: weights as safetensors plus a JSON sidecar that says how to rebuild
the module (architecture name + config) and where the weights came from (data, training, versions).

`model.safetensors` is paired with `model.json` in the same folder. Both are written under temporary
names and renamed only when both are complete, so a failed save leaves nothing behind.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from aebench.errors import AebenchError, CheckpointError
from aebench.infra.hashing import file_sha256
from aebench.infra.io import atomic_path

CHECKPOINT_FORMAT = "aebench-checkpoint/1"
WEIGHTS_NAME = "model.safetensors"


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar that belongs to a weights file (`model.safetensors` -> `model.json`)."""
    return Path(path).with_suffix(".json")


def weights_path(path: str | Path) -> Path:
    """Accept either the weights file or the folder holding `model.safetensors`."""
    path = Path(path).expanduser()
    return path / WEIGHTS_NAME if path.is_dir() else path


def sha256_file(path: str | Path) -> str:
    """sha256 of the weights file, read afresh (the checksum must see a file that changed)."""
    return file_sha256(path)


def versions() -> dict[str, str]:
    """Versions recorded in every checkpoint (provenance of the weights)."""
    from aebench import __version__

    return {"aebench": __version__, "torch": torch.__version__, "python": platform.python_version()}


def architecture_of(module: torch.nn.Module) -> dict[str, Any]:
    """{'name', 'config'} of a module built by an Architecture plugin (it carries `architecture`, `config`)."""
    from aebench.options import options_to_dict

    name, config = getattr(module, "architecture", None), getattr(module, "config", None)
    if not isinstance(name, str) or config is None:
        raise CheckpointError(
            f"{type(module).__name__} does not say which architecture built it; give it `architecture` and "
            f"`config` attributes or put sidecar['architecture'] = {{'name': ..., 'config': ...}}."
        )
    return {"name": name, "config": options_to_dict(config)}


def save_checkpoint(path: str | Path, module: torch.nn.Module, sidecar: dict[str, Any]) -> Path:
    """Write `module`'s weights to `path` (safetensors) and `sidecar` (+ checksum, format, versions) beside it."""
    path = Path(path).expanduser()
    meta = dict(sidecar)
    meta.setdefault("architecture", architecture_of(module))
    meta.setdefault("versions", versions())
    meta["format"] = CHECKPOINT_FORMAT
    meta["weights_file"] = path.name
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    # The sidecar is renamed last: a sidecar on disk means its weights file is complete.
    with atomic_path(sidecar_path(path)) as tmp_sidecar, atomic_path(path) as tmp_weights:
        save_file(tensors, str(tmp_weights), metadata={"format": CHECKPOINT_FORMAT})
        meta["weights_sha256"] = sha256_file(tmp_weights)
        meta["weights_bytes"] = tmp_weights.stat().st_size
        tmp_sidecar.write_text(json.dumps(meta, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of a checkpoint, with one-line errors when it is missing or malformed."""
    path = weights_path(path)
    side = sidecar_path(path)
    if not side.is_file():
        raise CheckpointError(
            f"Checkpoint sidecar {side} is missing, so the weights in {path.name} cannot be rebuilt; "
            f"keep the .json beside the .safetensors file or retrain with `aebench train --force`."
        )
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"Checkpoint sidecar {side} is not valid JSON ({exc}); retrain with `aebench train --force`.") from None
    arch = meta.get("architecture") if isinstance(meta, dict) else None
    if (not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or not isinstance(arch, dict)
            or not isinstance(arch.get("name"), str) or not isinstance(arch.get("config"), dict)
            or not isinstance(meta.get("weights_sha256"), str)):
        raise CheckpointError(
            f"Checkpoint sidecar {side} is not an {CHECKPOINT_FORMAT} sidecar (needs format, architecture.name, "
            f"architecture.config, weights_sha256); retrain with `aebench train --force`."
        )
    return meta


def build_architecture(meta: dict[str, Any], where: Path) -> torch.nn.Module:
    """Rebuild the untrained module a sidecar describes, through the architecture registry."""
    from aebench.plugins import get_registry

    registry = get_registry("architecture")
    name, config = meta["architecture"]["name"], meta["architecture"]["config"]
    if name not in registry:
        raise CheckpointError(
            f"Checkpoint {where} needs architecture '{name}', which no installed plugin registers; install the "
            f"plugin that provides it (available: {', '.join(registry.names()) or '(none)'})."
        )
    try:
        return registry.get(name)(config).build()
    except AebenchError as exc:
        raise CheckpointError(f"Checkpoint {where} has an invalid '{name}' config: {exc}") from None


def _check_keys(module: torch.nn.Module, tensors: dict[str, torch.Tensor], where: Path, arch: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in tensors and tensors[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
    if wrong:
        problems.append(f"shape mismatch {', '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}")
    if problems:
        raise CheckpointError(
            f"Checkpoint {where} does not match its architecture '{arch}' ({'; '.join(problems)}); "
            f"the sidecar and weights come from different models: retrain with `aebench train --force`."
        )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", *,
                    build: Callable[[dict[str, Any], Path], torch.nn.Module] | None = None,
                    retrain: str = "aebench train --force") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the module from its sidecar, verify and load the weights; returns (module in eval mode, sidecar).
    `build(sidecar, path)` rebuilds the untrained module (default: through the architecture registry);
    `retrain` is the command the error messages suggest."""
    path = weights_path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} not found; train one with `{retrain.replace('--force', '--out')} "
                              f"{path}` or fix the path.")
    meta = read_sidecar(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or truncated ({' '.join(str(exc).split())[:120]}); "
            f"retrain with `{retrain}`."
        ) from None
    digest = sha256_file(path)
    if digest != meta["weights_sha256"]:
        raise CheckpointError(
            f"Checkpoint {path} fails its checksum (sha256 {digest[:12]}... but the sidecar records "
            f"{meta['weights_sha256'][:12]}...): the file changed after saving; retrain with `{retrain}`."
        )
    module = (build or build_architecture)(meta, path)
    _check_keys(module, tensors, path, meta["architecture"]["name"])
    module.load_state_dict(tensors, strict=True)
    return module.to(device).eval(), meta


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    raise TypeError(f"checkpoint sidecar value of type {type(obj).__name__} is not JSON serialisable")
