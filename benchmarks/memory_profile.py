"""Where a run's memory goes: runs `aebench run` in this process with its stages tagged, samples the
resident size every 10 ms from a thread, and prints the highest resident size seen in each stage
(and the process's peak, VmHWM).

    python benchmarks/memory_profile.py -- --sampler plane_paths --out /tmp/out --quiet

Stages: model (load or train), latents (encode and statistics), regions, decode, re-encode,
features (the extractor's forward passes), each metric, figures. A stage's number is the resident
size while it ran, so it includes what earlier stages still hold. Linux only (/proc/self/status).
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from typing import Any, Callable

STACK: list[str] = ["startup"]
PEAKS: dict[str, float] = {}


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def sampler(stop: threading.Event) -> None:
    while not stop.is_set():
        stage, value = STACK[-1], rss_mb()
        PEAKS[stage] = max(PEAKS.get(stage, 0.0), value)
        time.sleep(0.01)


def tagged(stage: str | Callable[..., str], fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        STACK.append(stage(*args) if callable(stage) else stage)
        try:
            return fn(*args, **kwargs)
        finally:
            STACK.pop()

    return wrapper


def instrument() -> None:
    import aebench.caches.latents as latents
    import aebench.caches.models as model_cache
    import aebench.feature_extractor as fe
    import aebench.metric as metric
    import aebench.models.encoding as encoding
    import aebench.run.cells as cells
    import aebench.run.setup as run_setup

    model_cache.resolve_model = tagged("model", model_cache.resolve_model)
    latents.encoded_latents = tagged("latents", latents.encoded_latents)
    latents.latent_stats = tagged("latents", latents.latent_stats)
    run_setup._fit_regions = tagged("regions", run_setup._fit_regions)
    encoding.decode_latents = tagged("decode", encoding.decode_latents)
    encoding.encode_images = tagged("re-encode", encoding.encode_images)
    fe.extract_features = tagged("features", fe.extract_features)
    cells.draw = tagged("figures", cells.draw)
    from aebench.plugins import get_registry

    for name in get_registry("metric").names():
        cls = get_registry("metric").get(name)
        if "compute" in cls.__dict__:
            cls.compute = tagged(f"metric {name}", cls.compute)
    del metric


def main(argv: list[str]) -> int:
    args = argv[1:] if argv[:1] == ["--"] else argv
    from aebench.cli import main as cli_main

    instrument()
    stop = threading.Event()
    thread = threading.Thread(target=sampler, args=(stop,), daemon=True)
    thread.start()
    STACK.append("run (other)")
    rc = cli_main(["run", *args])
    STACK.pop()
    stop.set()
    thread.join()
    report = {"peak_mb": rss_mb("VmHWM"), "stages": {k: round(v) for k, v in PEAKS.items()}}
    print("MEMORY " + json.dumps(report), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
