"""Where aebench keeps its cache: data set arrays, trained models, latent stats, real-image features."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "AEBENCH_CACHE_DIR"


def cache_root(override: str | Path | None = None) -> Path:
    """`override`, else $AEBENCH_CACHE_DIR, else the user's cache folder (e.g. ~/.cache/aebench)."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("aebench", appauthor=False))
