"""Child process for peak-memory measurements: run one task on arrays loaded from .npy files and print
{"peak_mb": ...}, the rise of the peak resident size above the resident size after imports and data
loading.

Imports touch more memory than they keep, so the high-water mark is reset first (Linux
/proc/self/clear_refs "5") and read back as VmHWM: ru_maxrss would also carry the parent's peak,
inherited through fork/exec. Where /proc is not there, ru_maxrss minus its value after loading is
used, which can hide a small task under the import peak (the output says which).

Run by helpers.peak_memory_mb; one task per process so every number starts from a clean heap."""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys

import numpy as np


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        return None
    return None


def peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak() -> tuple[float, bool]:
    """Reset the high-water mark to the current resident size; returns (baseline MiB, was reset)."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return peak_mb(), False
    return _status_mb("VmRSS") or peak_mb(), True


def main() -> None:
    spec = json.loads(sys.argv[1])
    task, params = spec["task"], spec["params"]
    import torch  # noqa: F401  (imports before the baseline)

    if task.startswith("aebench"):
        from aebench.maths import knn, prdc
    else:
        import prdc as prdc_package  # noqa: F401
        from sklearn.metrics import pairwise_distances_chunked
        from sklearn.neighbors import NearestNeighbors
    arrays = {k: np.load(v, allow_pickle=False) for k, v in spec["arrays"].items()}
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    k = int(params.get("k", 5))
    prepared = {}
    if task in ("aebench_prdc_cached", "aebench_region_score"):  # the real side, computed once per run
        prepared["radii"] = knn.kth_neighbour_distance(tensors["real"], k)
    base, was_reset = reset_peak()

    if task == "aebench_prdc":
        prdc.compute_prdc(tensors["real"], tensors["fake"], k)
    elif task == "aebench_prdc_cached":
        prdc.compute_prdc(tensors["real"], tensors["fake"], k, real_radii=prepared["radii"])
    elif task == "prdc_package":
        with contextlib.redirect_stdout(io.StringIO()):
            prdc_package.compute_prdc(arrays["real"], arrays["fake"], k)
    elif task == "aebench_region":
        radii = knn.kth_neighbour_distance(tensors["real"], k)
        knn.min_ratio(tensors["fake"], tensors["real"], radii)
    elif task == "aebench_region_score":
        knn.min_ratio(tensors["fake"], tensors["real"], prepared["radii"])
    elif task == "sklearn_region":
        nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(arrays["real"])
        radii = nn.kneighbors(arrays["real"])[0][:, k]
        list(pairwise_distances_chunked(arrays["fake"], arrays["real"],
                                        reduce_func=lambda d, start: (d / radii[None, :]).min(1)))
    else:
        raise SystemExit(f"unknown task {task}")
    print(json.dumps({"peak_mb": max(0.0, peak_mb() - base), "reset": was_reset}))


if __name__ == "__main__":
    main()
