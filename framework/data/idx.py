"""Read IDX image and label files (the MNIST / Fashion-MNIST format), raw or gzipped, with numpy only.

Layout: 2 zero bytes, a type byte (0x08 = unsigned byte), a byte giving the number of dimensions
(3 for images, 1 for labels), then one big-endian int32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from aebench.errors import DataError

UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            return gzip.decompress(raw)
        return raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"IDX file {path} is a truncated or corrupt gzip file ({exc}); download it again.") from None
    except OSError as exc:
        raise DataError(f"Cannot read IDX file {path} ({exc.strerror or exc}); check the path and permissions.") from None


def _parse_header(head: bytes, path: Path) -> tuple[int, int, int]:
    if len(head) < 16:
        raise DataError(f"IDX file {path} is only {len(head)} bytes, too short for an image header; download it again.")
    if head[0] != 0 or head[1] != 0 or head[2] != UBYTE or head[3] != 3:
        raise DataError(
            f"{path} is not an IDX image file (magic {head[:4].hex()}, expected 00000803); "
            f"point at the *-images-idx3-ubyte files, not the label files."
        )
    n, rows, cols = (int(v) for v in np.frombuffer(head, dtype=">i4", count=3, offset=4))
    if rows <= 0 or cols <= 0 or n <= 0:
        raise DataError(f"IDX file {path} declares {n} images of {rows}x{cols}; the file is corrupt, download it again.")
    return n, rows, cols


def read_idx_header(path: str | Path) -> tuple[int, int, int]:
    """(n, rows, cols) from an IDX3 image file's 16-byte header, without reading the pixels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
        if head[:2] == GZIP_MAGIC:
            with gzip.open(path, "rb") as f:
                head = f.read(16)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"IDX file {path} is a truncated or corrupt gzip file ({exc}); download it again.") from None
    except OSError as exc:
        raise DataError(f"Cannot read IDX file {path} ({exc.strerror or exc}); check the path and permissions.") from None
    return _parse_header(head, path)


def read_idx_images(path: str | Path) -> np.ndarray:
    """uint8 images [n, rows, cols] from an IDX3 file; wrong magic, dimensions or length raise DataError."""
    path = Path(path)
    data = _read_bytes(path)
    n, rows, cols = _parse_header(data[:16], path)
    expected = 16 + n * rows * cols
    if len(data) != expected:
        raise DataError(
            f"IDX file {path} has {len(data)} bytes but its header ({n} images of {rows}x{cols}) needs {expected}; "
            f"the file is truncated or corrupt, download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def read_idx_labels(path: str | Path) -> np.ndarray:
    """uint8 labels [n] from an IDX1 file (magic 00000801); wrong magic or length raise DataError."""
    path = Path(path)
    data = _read_bytes(path)
    head = data[:8]
    if len(head) < 8 or head[0] != 0 or head[1] != 0 or head[2] != UBYTE or head[3] != 1:
        raise DataError(
            f"{path} is not an IDX label file (magic {head[:4].hex()}, expected 00000801); "
            f"point at the *-labels-idx1-ubyte files."
        )
    n = int(np.frombuffer(head, dtype=">i4", count=1, offset=4)[0])
    if len(data) != 8 + n:
        raise DataError(f"IDX label file {path} has {len(data)} bytes but its header ({n} labels) needs {8 + n}; "
                        f"the file is truncated or corrupt, download it again.")
    return np.frombuffer(data, dtype=np.uint8, offset=8)
