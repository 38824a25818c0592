"""`image_folder` (any folder of JPEG/PNG images) and its `celeba` preset.

Images are decoded once (threads: PIL releases the GIL while decoding) into a memory-mappable cache
keyed by the folder, every file's name, size and mtime, and the pixel options; later runs map that
file and never touch a JPEG again.

Class labels come from the layout: when every image sits in a sub-folder of the root and there are at
least two such folders, each top-level folder is a class (`root/cat/1.png`, `root/dog/7.jpg`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from aebench import hookimpl
from aebench.data.image_cache import cache_key, cached_images
from aebench.data.split import indices_from_mask, spread_heldout, tail_heldout
from aebench.dataset import DatasetSource, ImageDataset
from aebench.errors import DataError
from aebench.infra.console import progress_bar
from aebench.options import option

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PARTITION_FILE = "list_eval_partition.txt"
DECODER_VERSION = 1  # bump when decode_image changes its pixels, so old cache entries are not reused
# Bilinear with PIL's antialiasing: what torchvision's CenterCrop + Resize (the usual CelebA pipeline) does.
RESAMPLE = Image.Resampling.BILINEAR


def list_images(folder: Path) -> list[str]:
    """Relative POSIX names of every JPEG/PNG under `folder` (recursive, hidden files skipped), sorted."""
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_root = Path(root).relative_to(folder)
        names += [(rel_root / f).as_posix() for f in files
                  if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(names)


def folder_labels(names: list[str], folder: Path) -> tuple[np.ndarray | None, list[str] | None, str]:
    """(label per name, class names, where they came from) from each name's top-level sub-folder, or
    (None, None, why not) unless every image is in one and there are at least two."""
    tops = [name.split("/", 1)[0] if "/" in name else None for name in names]
    classes = sorted({t for t in tops if t is not None})
    if any(t is None for t in tops) or len(classes) < 2:
        where = "some images sit directly in the folder" if any(t is None for t in tops) else \
            f"{len(classes)} sub-folder{'s' if len(classes) != 1 else ''}"
        return None, None, (f"no class labels in {folder} ({where}); put the images in one sub-folder per class, "
                            f"at least two (DIR/cat/*.png, DIR/dog/*.png)")
    index = {name: i for i, name in enumerate(classes)}
    return (np.array([index[t] for t in tops], dtype=np.int64), classes,
            f"the top-level sub-folders of {folder} ({len(classes)} classes)")


def decode_image(path: Path, channels: int, crop: int, size: int) -> np.ndarray:
    """One image as uint8 [channels, size, size]: centre square of side `crop` (0 = largest), resized."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if channels == 1 else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"Cannot decode image {path} ({exc}); delete or replace that file.") from None
    w, h = im.size
    side = crop or min(w, h)
    if side > min(w, h):
        raise DataError(f"Image {path} is {w}x{h}, smaller than the {side}px crop; lower --set dataset.crop.")
    left, top = round((w - side) / 2), round((h - side) / 2)
    im = im.crop((left, top, left + side, top + side))
    if side != size:
        im = im.resize((size, size), RESAMPLE)
    array = np.asarray(im, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_folder(folder: Path, names: list[str], channels: int, crop: int, size: int, cache_dir: Path):
    """uint8 tensor [n, channels, size, size] of `names`, decoded once with a progress bar, then cached."""
    stats = []
    for name in names:
        st = (folder / name).stat()
        stats.append([name, st.st_size, st.st_mtime_ns])
    key = cache_key({"kind": "image_folder", "decoder": DECODER_VERSION, "root": str(folder.resolve()),
                     "files": stats, "channels": channels, "crop": crop, "size": size})

    def fill(out: np.ndarray) -> None:
        def one(i: int) -> int:
            out[i] = decode_image(folder / names[i], channels, crop, size)
            return i

        with progress_bar() as bar, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            task = bar.add_task(f"decoding {len(names)} images from {folder}", total=len(names))
            for _ in pool.map(one, range(len(names))):
                bar.advance(task)

    return cached_images(cache_dir, key, (len(names), channels, size, size), fill)


class ImageFolder(DatasetSource):
    name = "image_folder"
    description = (
        "Any folder of JPEG/PNG images (recursive, sorted by name): centre square crop, resized; "
        "decoded once into a memory-mapped cache; every k-th file held out."
    )

    @dataclass(frozen=True)
    class Options:
        path: str = option("", "folder of JPEG/PNG images, searched recursively (required)")
        size: int = option(64, "output side in pixels (square)", min=8)
        channels: Literal[1, 3] = option(3, "3 for RGB, 1 for grey")
        crop: int = option(0, "side of the centred square cut from each source image, in source pixels "
                              "(0 = the largest centred square)", min=0)
        limit: int = option(0, "use only the first N files in sorted order (0 = all)", min=0)
        heldout_fraction: float = option(0.1, "share of files held out, spread evenly over the sorted order "
                                              "(0.1 = every 10th file)", min=0.0, max=0.9, min_exclusive=True)

    def folder(self) -> Path:
        if not self.options.path:
            raise DataError(f"Data set {self.name} needs a folder of images; pass --set dataset.path=DIR.")
        folder = Path(self.options.path).expanduser()
        if not folder.is_dir():
            raise DataError(f"Image folder {folder} does not exist; check --set dataset.path=DIR.")
        return folder

    def heldout_mask(self, folder: Path, names: list[str]) -> np.ndarray:
        return spread_heldout(len(names), self.options.heldout_fraction)

    def load(self, cache_dir: Path) -> ImageDataset:
        opts = self.options
        folder = self.folder()
        names = list_images(folder)
        if opts.limit:
            names = names[:opts.limit]
        if not names:
            raise DataError(f"No .jpg, .jpeg or .png images under {folder}; point --set dataset.path at an image folder.")
        images = decode_folder(folder, names, opts.channels, opts.crop, opts.size, cache_dir)
        train_index, heldout_index = indices_from_mask(self.heldout_mask(folder, names))
        labels, classes, labels_source = folder_labels(names, folder)
        return ImageDataset(self.name, images, train_index, heldout_index, options=self.options_dict(),
                            source=str(folder.resolve()), citation=self.citation,
                            labels=torch.from_numpy(labels) if labels is not None else None, class_names=classes,
                            labels_source=labels_source)


def read_partition(path: Path) -> dict[str, int]:
    """CelebA's list_eval_partition.txt: file name -> 0 (train), 1 (validation) or 2 (test)."""
    out = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"{path} line {line_no} is not '<file> <0|1|2>'; restore the original CelebA file.")
        out[parts[0]] = int(parts[1])
    return out


class CelebA(ImageFolder):
    name = "celeba"
    description = (
        "CelebA aligned faces (img_align_celeba/, 178x218 JPEGs): centre crop 140x140, resized to 64x64 RGB, "
        "the convention of Tolstikhin et al. 2018 (Wasserstein auto-encoders); official split when "
        "list_eval_partition.txt sits beside the folder (train vs validation+test), else the last 10% held out."
    )
    citation = "Z. Liu, P. Luo, X. Wang and X. Tang, 'Deep Learning Face Attributes in the Wild', ICCV 2015."
    default_latent_dim = 256  # as in the source blog series; ~200k training images keep it full-rank

    @dataclass(frozen=True)
    class Options(ImageFolder.Options):
        path: str = option("", "the img_align_celeba folder (required)")
        crop: int = option(140, "side of the centred square cut from each 178x218 image", min=0)
        heldout_fraction: float = option(0.1, "share held out (the last files in name order) when "
                                              "list_eval_partition.txt is absent", min=0.0, max=0.9,
                                         min_exclusive=True)

    def heldout_mask(self, folder: Path, names: list[str]) -> np.ndarray:
        for candidate in (folder.parent / PARTITION_FILE, folder / PARTITION_FILE):
            if candidate.is_file():
                partition = read_partition(candidate)
                missing = [n for n in names if Path(n).name not in partition]
                if missing:
                    raise DataError(f"{missing[0]} is not listed in {candidate}; remove that file or the partition list.")
                return np.array([partition[Path(n).name] > 0 for n in names], dtype=bool)
        return tail_heldout(len(names), self.options.heldout_fraction)


@hookimpl
def register_datasets(register):
    register(ImageFolder)
    register(CelebA)
