"""The domain judge: data set labels, deterministic training, the `domain` extractor against a direct
forward pass, and unlabelled data sets refused with one line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aebench.caches.judges import default_judge_path, load_judge, resolve_judge
from aebench.cli import main
from aebench.data.fashion_mnist import FashionMnist
from aebench.data.idx import read_idx_labels
from aebench.data.image_folder import ImageFolder
from aebench.dataset import ImageDataset, load_dataset
from aebench.errors import CheckpointError, DataError
from aebench.extractors.domain import DomainFeatures, DomainJudge
from aebench.feature_extractor import ExtractorContext, extract_features
from aebench.models.judge_training import train_and_save_judge

# a judge small enough to train in a second or two: ORL at 16x16 (40 people), two narrow blocks
TINY_NET = {"channels": (4, 8), "width": 16}
TINY_TRAINING = {"epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def orl16(tmp_path_factory):
    return load_dataset("orl_faces", {"size": 16}, cache_dir=tmp_path_factory.mktemp("orl16"))


@pytest.fixture(scope="module")
def tiny_judge(orl16, tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("judge") / "judge.safetensors"
        return train_and_save_judge(orl16, out, training=TINY_TRAINING, net_options=TINY_NET, seed=0, progress=False)
    finally:
        torch.set_num_threads(before)


# -- labels --------------------------------------------------------------------------------------------


def test_orl_labels_are_the_40_people(orl16):
    assert orl16.labels.dtype == torch.int64 and orl16.labels.shape == (400,)
    assert orl16.labels[:10].tolist() == [0] * 10 and orl16.labels[-1] == 39
    assert orl16.num_classes == 40 and orl16.class_names[0] == "s1"
    # the held-out faces are images 9-10 of every person: every person is in both splits
    assert orl16.labels[orl16.heldout_index].unique().numel() == 40
    assert orl16.labels[orl16.train_index].bincount().tolist() == [8] * 40


def write_labels(path: Path, labels: np.ndarray, gz: bool = True) -> None:
    blob = bytes([0, 0, 8, 1]) + np.array([len(labels)], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes()
    if gz:
        path, blob = path.with_name(path.name + ".gz"), gzip.compress(blob)
    path.write_bytes(blob)


def test_fashion_labels_from_the_label_files(tmp_path):
    from test_data import write_idx

    rng = np.random.default_rng(0)
    folder = tmp_path / "fm"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)), gz=True)
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28)), gz=False)
    unlabelled = FashionMnist(path=str(folder)).load(tmp_path / "cache")
    assert unlabelled.labels is None and "train-labels-idx1-ubyte" in unlabelled.labels_source
    write_labels(folder / "train-labels-idx1-ubyte", np.array([0, 1, 2, 9, 9]))
    write_labels(folder / "t10k-labels-idx1-ubyte", np.array([3, 4, 5]), gz=False)
    ds = FashionMnist(path=str(folder), limit_train=4).load(tmp_path / "cache")
    assert ds.labels.tolist() == [0, 1, 2, 9, 3, 4, 5] and ds.class_names[9] == "Ankle boot"
    assert ds.fingerprint() == FashionMnist(path=str(folder), limit_train=4).load(tmp_path / "c2").fingerprint()


def test_idx_label_file_checks(tmp_path):
    path = tmp_path / "labels"
    write_labels(path, np.array([1, 2, 3]), gz=False)
    assert read_idx_labels(path).tolist() == [1, 2, 3]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx_labels(path)
    path.write_bytes(bytes([0, 0, 8, 3]) + bytes(12))
    with pytest.raises(DataError, match="not an IDX label file"):
        read_idx_labels(path)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz").is_file(),
                    reason="Fashion-MNIST files not installed")
def test_fashion_real_labels_are_balanced(tmp_path):
    ds = FashionMnist(limit_train=1000, limit_heldout=500).load(tmp_path / "cache")
    assert ds.num_classes == 10 and ds.labels.shape == (1500,)
    assert ds.labels[ds.train_index].bincount().min() > 50  # ten classes of roughly 100 each


def test_image_folder_labels_from_class_folders(tmp_path):
    from test_data import make_png_folder

    folder = make_png_folder(tmp_path / "pngs")  # a/ holds images 0-9, b/ images 10-19
    ds = ImageFolder(path=str(folder), size=8).load(tmp_path / "cache")
    assert ds.labels.tolist() == [0] * 10 + [1] * 10 and ds.class_names == ["a", "b"]
    one_class = ImageFolder(path=str(folder), size=8, limit=5).load(tmp_path / "cache")
    assert one_class.labels is None and "one sub-folder per class" in one_class.labels_source


def test_labels_are_checked_and_optional():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    split = (torch.arange(3), torch.tensor([3]))
    assert ImageDataset("x", images, *split).labels is None  # plugins without labels keep working
    with pytest.raises(ValueError, match="labels must be integers"):
        ImageDataset("x", images, *split, labels=torch.zeros(3, dtype=torch.int64))
    with pytest.raises(DataError, match="has no class labels.*sub-folders"):
        ImageDataset("x", images, *split).require_labels("the domain judge")
    same = ImageDataset("x", images, *split, labels=torch.tensor([1, 1, 1, 0]))
    with pytest.raises(DataError, match="only one class in its training split"):
        same.require_labels("the domain judge")


# -- training --------------------------------------------------------------------------------------


def test_training_is_deterministic(orl16, tiny_judge, tmp_path):
    again = train_and_save_judge(orl16, tmp_path / "again.safetensors", training=TINY_TRAINING,
                                 net_options=TINY_NET, seed=0, progress=False)
    assert again.sidecar["weights_sha256"] == tiny_judge.sidecar["weights_sha256"]
    other = train_and_save_judge(orl16, tmp_path / "other.safetensors", training=TINY_TRAINING,
                                 net_options=TINY_NET, seed=1, progress=False)
    assert other.sidecar["weights_sha256"] != tiny_judge.sidecar["weights_sha256"]


def test_sidecar_records_accuracy_and_data(orl16, tiny_judge):
    side = json.loads(tiny_judge.checkpoint.with_suffix(".json").read_text())
    m = side["metrics"]
    assert side["kind"] == "aebench-judge/1" and side["architecture"]["name"] == "judge_cnn"
    assert m["n_train"] == 320 and m["n_heldout"] == 80 and m["num_classes"] == 40
    assert 0.0 <= m["heldout_accuracy"] <= 1.0 and m["majority_baseline"] == pytest.approx(2 / 80)
    assert side["dataset"]["fingerprint"] == orl16.fingerprint()
    # the recorded accuracy is the saved weights' accuracy on the held-out faces
    judge = load_judge(tiny_judge.checkpoint)
    with torch.inference_mode():
        pred = judge.module(orl16.heldout.float() / 255).argmax(1)
    assert float((pred == orl16.labels[orl16.heldout_index]).double().mean()) == pytest.approx(m["heldout_accuracy"])


def test_a_judge_checkpoint_is_verified(tiny_judge, tmp_path):
    import shutil

    copy = tmp_path / "judge.safetensors"
    shutil.copy(tiny_judge.checkpoint, copy)
    shutil.copy(tiny_judge.checkpoint.with_suffix(".json"), copy.with_suffix(".json"))
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum.*aebench judge train --force"):
        load_judge(copy)


def test_an_autoencoder_is_not_a_judge(tiny_orl_checkpoint):
    with pytest.raises(CheckpointError, match="is not a domain judge"):
        load_judge(tiny_orl_checkpoint)


# -- the extractor ---------------------------------------------------------------------------------


def bound(dataset: ImageDataset, checkpoint: Path, cache: Path) -> DomainJudge:
    extractor = DomainJudge(checkpoint=str(checkpoint))
    extractor.bind(ExtractorContext(dataset=dataset, cache_dir=cache, device=torch.device("cpu")))
    return extractor


def test_domain_features_are_the_judges_penultimate_layer(orl16, tiny_judge, tmp_path):
    extractor = bound(orl16, tiny_judge.checkpoint, tmp_path)
    module = extractor.build("cpu")
    images = orl16.images[:50]
    feats = extract_features(module, images, batch_size=16)
    judge = load_judge(tiny_judge.checkpoint).module
    with torch.inference_mode():
        direct = judge.body(images.float() / 255.0)  # conv blocks, flatten, linear, ReLU: by hand
        by_hand = judge.body[-2](judge.body[:-2](images.float() / 255.0)).relu()
    assert feats.shape == (50, 16) and extractor.num_features == 16
    torch.testing.assert_close(feats, direct, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(feats, by_hand, rtol=1e-5, atol=1e-6)
    assert (feats >= 0).all() and (feats > 0).any()


def test_domain_identity_and_provenance(orl16, tiny_judge, tmp_path):
    extractor = bound(orl16, tiny_judge.checkpoint, tmp_path)
    sha = tiny_judge.sidecar["weights_sha256"]
    assert extractor.identity() == f"domain:orl_faces-{orl16.fingerprint()}:{sha[:12]}"
    prov = extractor.provenance()
    assert prov["checksum"] == sha and prov["heldout_accuracy"] == tiny_judge.metrics["heldout_accuracy"]
    assert prov["num_classes"] == 40 and prov["trained_on"] == "orl_faces"


def test_domain_refuses_images_of_another_shape(orl16, tiny_judge, tmp_path):
    module = bound(orl16, tiny_judge.checkpoint, tmp_path).build("cpu")
    with pytest.raises(DataError, match=r"takes images \(1, 16, 16\)"):
        module(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    assert isinstance(module, DomainFeatures)


def test_cached_judge_is_trained_once_then_loaded(orl16, tmp_path, monkeypatch):
    from aebench.models import judge_training

    calls = []
    real = judge_training.train_and_save_judge

    def tiny(dataset, out, **kwargs):
        calls.append(out)
        return real(dataset, out, training=TINY_TRAINING, net_options=TINY_NET, seed=kwargs["seed"], progress=False)

    monkeypatch.setattr(judge_training, "train_and_save_judge", tiny)
    first = resolve_judge(orl16, cache_dir=tmp_path, quiet=True)
    second = resolve_judge(orl16, cache_dir=tmp_path, quiet=True)
    assert calls == [default_judge_path(orl16, 0, tmp_path)] and first.checksum == second.checksum
    with pytest.raises(CheckpointError, match="takes images"):
        resolve_judge(load_dataset("orl_faces", {"size": 32}, cache_dir=tmp_path), checkpoint=first.path)


def test_a_damaged_cached_judge_is_trained_again_with_a_warning(orl16, tmp_path, monkeypatch, capsys):
    from aebench.models import judge_training

    calls = []
    real = judge_training.train_and_save_judge

    def tiny(dataset, out, **kwargs):
        calls.append(out)
        return real(dataset, out, training=TINY_TRAINING, net_options=TINY_NET, seed=kwargs["seed"], progress=False)

    monkeypatch.setattr(judge_training, "train_and_save_judge", tiny)
    first = resolve_judge(orl16, cache_dir=tmp_path, quiet=True)
    data = bytearray(first.path.read_bytes())
    data[-1] ^= 0xFF  # the cached weights no longer match their sidecar's checksum
    first.path.write_bytes(bytes(data))
    capsys.readouterr()
    again = resolve_judge(orl16, cache_dir=tmp_path, quiet=True)
    err = capsys.readouterr().err
    assert len(calls) == 2 and again.checksum == first.checksum  # trained again, deterministically
    assert "Warning: the cached domain judge for orl_faces (seed 0)" in err and "is damaged" in err
    assert "fails its checksum" in err


# -- unlabelled data sets --------------------------------------------------------------------------


def flat_folder(root: Path, n: int = 40) -> Path:
    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), 6 * i, dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def test_judge_train_refuses_an_unlabelled_data_set(tmp_path, capsys):
    folder = flat_folder(tmp_path / "flat")
    rc = main(["judge", "train", "--dataset", "image_folder", "--set", f"dataset.path={folder}",
               "--set", "dataset.size=16", "--cache-dir", str(tmp_path / "cache")])
    lines = capsys.readouterr().err.strip().splitlines()  # a transient progress bar may precede the error
    assert rc == 2 and lines[-1].startswith("Error: ") and sum(line.startswith("Error") for line in lines) == 1
    assert "has no class labels" in lines[-1] and "one sub-folder per class" in lines[-1]
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_run_with_domain_features_refuses_an_unlabelled_data_set(tmp_path, capsys, tiny_orl_checkpoint):
    folder = flat_folder(tmp_path / "flat")
    rc = main(["run", "--dataset", "image_folder", "--set", f"dataset.path={folder}", "--set", "dataset.size=32",
               "--set", "dataset.channels=1", "--checkpoint", str(tiny_orl_checkpoint), "--features", "domain",
               "--sampler", "gaussian", "--n", "8", "--metrics", "fid", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines()[-1].startswith("Error: Data set image_folder has no class labels")
    assert not (tmp_path / "out" / "results.json").exists()
