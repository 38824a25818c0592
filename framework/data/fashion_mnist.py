"""`fashion_mnist`: Zalando's Fashion-MNIST (70k grey 28x28 images) from local IDX files, never downloaded.

Train = the 60k train file, held-out = the 10k t10k file (the official split). The decoded, padded
array is cached once as a memory-mappable file. The class labels come from the label files that ship
beside the images (`*-labels-idx1-ubyte[.gz]`); without them the data set simply has no labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aebench import hookimpl
from aebench.data.idx import read_idx_header, read_idx_images, read_idx_labels
from aebench.data.image_cache import cache_key, cached_images
from aebench.dataset import DatasetSource, ImageDataset
from aebench.errors import DataError, OptionError
from aebench.options import option

DEFAULT_FOLDER = "/usr/share/datasets/fashion-mnist"
TRAIN_FILE = "train-images-idx3-ubyte"
HELDOUT_FILE = "t10k-images-idx3-ubyte"
LABEL_FILES = ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SOURCE_SIDE = 28
GET_HINT = (
    "install them with `apt-get install dataset-fashion-mnist` (puts them in /usr/share/datasets/fashion-mnist/) "
    "or point at a folder holding them with `--set dataset.path=DIR`"
)


def find_idx_file(folder: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in `folder`, with an error that says how to get the files."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    if not folder.is_dir():
        raise DataError(f"Fashion-MNIST folder {folder} does not exist; {GET_HINT}.")
    raise DataError(f"Fashion-MNIST file {stem}[.gz] is not in {folder}; {GET_HINT}.")


def read_labels(folder: Path, counts: list[int]) -> tuple[torch.Tensor | None, str]:
    """(labels of the first `counts` images of each split, where they came from), or (None, why not)."""
    paths = []
    for stem in LABEL_FILES:
        found = [folder / name for name in (stem, stem + ".gz") if (folder / name).is_file()]
        if not found:
            return None, (f"the label file {stem}[.gz] is not in {folder}; it ships with the images "
                          f"(apt-get install dataset-fashion-mnist)")
        paths.append(found[0])
    parts = []
    for path, count in zip(paths, counts):
        labels = read_idx_labels(path)
        if labels.shape[0] < count:
            raise DataError(f"{path} holds {labels.shape[0]} labels for {count} images; use the label file that "
                            f"belongs to the images.")
        if labels[:count].size and int(labels[:count].max()) >= len(CLASS_NAMES):
            raise DataError(f"{path} has a label above {len(CLASS_NAMES) - 1}; it is not a Fashion-MNIST label file.")
        parts.append(torch.from_numpy(labels[:count].astype(np.int64)))
    return torch.cat(parts), f"{paths[0].name} and {paths[1].name} in {folder}"


def _file_id(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


class FashionMnist(DatasetSource):
    name = "fashion_mnist"
    description = (
        "Fashion-MNIST: 60k train + 10k held-out (t10k) grey 28x28 images of clothing from local IDX files "
        "(apt-get install dataset-fashion-mnist), zero-padded to 32x32."
    )
    citation = (
        "H. Xiao, K. Rasul and R. Vollgraf, 'Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
        "Learning Algorithms', arXiv:1708.07747, 2017."
    )
    # 28x28 grey clothing is simpler than faces: N=32 reconstructs it well, and 60k training images make every
    # fit well posed
    default_latent_dim = 32

    @dataclass(frozen=True)
    class Options:
        path: str = option(DEFAULT_FOLDER, "folder holding train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz]")
        size: int = option(32, "output side: the 28x28 images zero-padded by (size-28)/2 px per side; the default "
                               "32 (2 px) lets 4 stride-2 convolutions divide evenly", min=SOURCE_SIDE)
        limit_train: int = option(0, "use only the first N training images (0 = all 60000)", min=0)
        limit_heldout: int = option(0, "use only the first N held-out images (0 = all 10000)", min=0)

        def __post_init__(self) -> None:
            if (self.size - SOURCE_SIDE) % 2:
                raise OptionError(f"option size must be 28 plus an even number of padding pixels (28, 30, 32, ...), got {self.size}.")

    def load(self, cache_dir: Path) -> ImageDataset:
        opts = self.options
        folder = Path(opts.path).expanduser()
        files = [find_idx_file(folder, TRAIN_FILE), find_idx_file(folder, HELDOUT_FILE)]
        counts = []
        for f, limit in zip(files, (opts.limit_train, opts.limit_heldout)):
            n, rows, cols = read_idx_header(f)
            if (rows, cols) != (SOURCE_SIDE, SOURCE_SIDE):
                raise DataError(f"{f} holds {rows}x{cols} images, expected 28x28 Fashion-MNIST; check --set dataset.path.")
            counts.append(min(n, limit) if limit else n)
        pad = (opts.size - SOURCE_SIDE) // 2
        key = cache_key({"dataset": self.name, "files": [_file_id(f) for f in files], "size": opts.size,
                         "counts": counts})

        def fill(out: np.ndarray) -> None:
            out[:] = 0
            start = 0
            for f, count in zip(files, counts):
                out[start:start + count, 0, pad:pad + SOURCE_SIDE, pad:pad + SOURCE_SIDE] = read_idx_images(f)[:count]
                start += count

        images = cached_images(cache_dir, key, (sum(counts), 1, opts.size, opts.size), fill)
        labels, labels_source = read_labels(folder, counts)
        n_train, n_heldout = counts
        return ImageDataset(
            name=self.name,
            images=images,
            train_index=torch.arange(n_train, dtype=torch.int64),
            heldout_index=torch.arange(n_train, n_train + n_heldout, dtype=torch.int64),
            options=self.options_dict(),
            source=str(folder),
            citation=self.citation,
            labels=labels,
            class_names=list(CLASS_NAMES) if labels is not None else None,
            labels_source=labels_source,
        )


@hookimpl
def register_datasets(register):
    register(FashionMnist)
