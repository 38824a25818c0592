"""Is the model worth benchmarking? Its held-out reconstruction error against the mean-image baseline
(predicting every held-out image by the mean training image), known before any sampler runs.

A model that reconstructs worse than that baseline has learnt nothing of the data (an untrained
network, weights that did not load, a model for other images), so every sampler's decoded images are
poor and the run's numbers say nothing about the samplers. Such a model gets a warning in the
terminal, the reports and the results (`model.reconstruction.worse_than_baseline`); with `strict` the
run stops there, exit 2.

The numbers come from an aebench checkpoint's sidecar when it was trained on the run's data set (same
fingerprint; training measured them on every held-out image); any other model, `--model
package.module:factory` above all, is measured once on up to MAX_IMAGES held-out images (a fixed
subset) and the result cached beside the model, keyed and checksummed like every cache entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from aebench.errors import AebenchError
from aebench.infra.cache_entries import DamagedEntry, load_or_compute
from aebench.infra.io import write_json_atomic
from aebench.results.reconstruction import numbers_text, warning_text

FORMAT = "aebench-reconstruction/1"
MAX_IMAGES = 1000


class UselessModelError(AebenchError):
    """--strict and a model that reconstructs worse than the mean image."""


def reconstruction_check(model: Any, dataset: Any, device: torch.device | str, batch_size: int = 128) -> dict[str, Any] | None:
    """{heldout_mse, baseline_mse, n, source, worse_than_baseline} of `model` on `dataset`'s held-out
    images; None without a data set (latent files only: no images to reconstruct)."""
    if dataset is None:
        return None
    sidecar = model.config or {}
    metrics = sidecar.get("metrics") or {}
    trained_on = (sidecar.get("dataset") or {}).get("fingerprint")
    numbers: dict[str, Any]
    if trained_on == dataset.fingerprint() and metrics.get("heldout_mse") is not None and metrics.get("baseline_mse") is not None:
        numbers = {"heldout_mse": float(metrics["heldout_mse"]), "baseline_mse": float(metrics["baseline_mse"]),
                   "n": int(dataset.heldout_index.numel()), "source": "checkpoint"}
    else:
        numbers = _measured(model, dataset, device, batch_size)
    return {**numbers, "worse_than_baseline": bool(float(numbers["heldout_mse"]) >= float(numbers["baseline_mse"]))}


def check_model(model: Any, dataset: Any, device: torch.device | str, *, strict: bool,
                batch_size: int = 128) -> dict[str, Any] | None:
    """Measure (or read) the model's reconstruction check; warn about a useless model, or with `strict`
    refuse it. Returns the check for the results document."""
    check = reconstruction_check(model, dataset, device, batch_size)
    warning = warning_text(check)
    if warning is not None and check is not None:
        if strict:
            raise UselessModelError(
                f"The model reconstructs held-out images worse than the mean training image does "
                f"({numbers_text(check)}); train or fix the model, or drop --strict to benchmark it anyway.")
        from aebench.infra.console import err_console

        err_console.print(f"Warning: {warning}", markup=False, soft_wrap=True, highlight=False)
    return check


def _payload_sha(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _measured(model: Any, dataset: Any, device: torch.device | str, batch_size: int) -> dict[str, Any]:
    from aebench.caches.latents import cache_record

    record = cache_record(model, dataset)
    path = Path(model.cache_dir) / f"reconstruction-{dataset.fingerprint()}.json"

    def read(p: Path) -> dict[str, Any]:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            payload, digest = data["payload"], data["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            raise DamagedEntry("unreadable or incomplete") from None
        if _payload_sha(payload) != digest:
            raise DamagedEntry("its numbers fail their sha256 checksum")
        if payload.get("format") != FORMAT or payload.get("record") != record:
            raise DamagedEntry("written for another model or data set")
        return {k: payload[k] for k in ("heldout_mse", "baseline_mse", "n")} | {"source": "measured"}

    def make() -> dict[str, Any]:
        numbers = measure(model, dataset, device, batch_size)
        payload = {"format": FORMAT, "record": record, **numbers}
        write_json_atomic(path, {"payload": payload, "sha256": _payload_sha(payload)})
        return numbers | {"source": "measured"}

    value, _ = load_or_compute(path, read, make, f"reconstruction check of the model on {dataset.name}")
    return value


def measure(model: Any, dataset: Any, device: torch.device | str, batch_size: int = 128) -> dict[str, Any]:
    """{heldout_mse, baseline_mse, n}: the mean squared error (pixels in [0, 1]) of the model's
    reconstructions of a fixed subset of at most MAX_IMAGES held-out images, and of the mean training
    image as the prediction of each of them."""
    from aebench.models.training import mean_image_mse
    from aebench.run.setup import subset_index

    index = dataset.heldout_index[subset_index(int(dataset.heldout_index.numel()), MAX_IMAGES)]
    module = model.module
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, int(index.numel()), batch_size):
            x = dataset.images[index[start:start + batch_size]].to(device).float().div_(255.0)
            y = module.decode(module.encode(x))
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise AebenchError(f"The model's decode(encode(images)) returned {got} for images of shape "
                                   f"{tuple(x.shape)}; fix its encode/decode.")
            total += float(((y.float() - x) ** 2).sum(dtype=torch.float64))
            count += x.numel()
    baseline = mean_image_mse(dataset.images, dataset.images, train_index=dataset.train_index, heldout_index=index)
    return {"heldout_mse": total / max(count, 1), "baseline_mse": baseline, "n": int(index.numel())}
