"""The pictures behind the verdict, each written atomically as one image file: the memorisation gallery (copied
samples beside the training image whose latent is nearest), the ladder strips (what each step of a
known-answer ladder looks like), and the explorer's image sprites (JPEG tiles that report.html cuts back out).

Drawn from arrays the run computed (decoded images, distances, levels); nothing here scores anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aebench.infra.io import atomic_path
from aebench.reports.figures import FigureError, _as_images, _pil_image, grid_array, image_rows

JPEG_BLOCK = 16  # JPEG codes 8x8 blocks (16x16 with colour subsampled): tiles on whole blocks never bleed
JPEG_QUALITY = 85  # decoded faces are smooth: 85 looks like the PNG at a quarter of its size


def sprite_stride(height: int, width: int) -> tuple[int, int]:
    """The cell of one tile in a sprite: the tile's size rounded up to whole JPEG blocks."""
    return -(-height // JPEG_BLOCK) * JPEG_BLOCK, -(-width // JPEG_BLOCK) * JPEG_BLOCK


def tile_sprite(images: Any, path: str | Path, *, ncols: int) -> Path:
    """Images as one JPEG of tiles, row-major, `ncols` a row (tile k at column k % ncols, row k // ncols),
    each in a cell of `sprite_stride` pixels (its top left corner; the rest white): the explorer's grids
    and hover images, cut back out in the browser. JPEG, not PNG: a quarter of the bytes in report.html."""
    arr = _as_images(images)
    n, c, h, w = arr.shape
    sh, sw = sprite_stride(h, w)
    padded = np.full((n, c, sh, sw), 255, dtype=np.uint8)
    padded[:, :, :h, :w] = arr
    img = _pil_image(grid_array(padded, ncols=ncols, pad=0))
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=JPEG_QUALITY)
    return path


def copies_gallery(samples: Any, decoded_train: Any, train_images: Any | None, captions: Sequence[str],
                   path: str | Path, *, title: str) -> Path:
    """The memorisation gallery: one column per copied sample, most copied first; rows: the decoded
    sample, the decoder's image of its nearest training latent, and (when known) that training image;
    `captions` (one per column) go under the last row."""
    rows: list[tuple[str, Any, Sequence[str] | None]] = [
        ("sample\n(decoded)", samples, None),
        ("nearest training\nlatent, decoded", decoded_train, None if train_images is not None else captions),
    ]
    if train_images is not None:
        rows.append(("its training\nimage", train_images, captions))
    return image_rows(rows, path, title=title, xlabel=" ")


def ladder_strip(images: Any, levels: Sequence[str], path: str | Path, *, title: str) -> Path:
    """One ladder's steps side by side: `images` uint8 [steps, k, c, h, w] (the same k base points at
    every step, one row each), `levels` one caption per step."""
    arr = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if arr.ndim != 5 or arr.shape[0] != len(levels):
        raise FigureError(f"Ladder images must be [steps, k, c, h, w] with one level per step, got shape "
                          f"{tuple(arr.shape)} and {len(levels)} levels.")
    steps, k = arr.shape[:2]
    rows = [(f"point {r + 1}", arr[:, r], list(levels) if r == k - 1 else None) for r in range(k)]
    return image_rows(rows, path, title=title, xlabel="step (level): the same base points at every step")
