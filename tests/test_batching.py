"""Batch sizes for the AE and the extractor, the out-of-memory back-off, and decode/feature failures
inside the per-sampler isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aebench.cli import main
from aebench.errors import OptionError
from aebench.hookspecs import hookimpl
from aebench.run.batching import (
    DEFAULT_BATCH_MEMORY_CPU_MB,
    ae_batch_size,
    feature_batch_size,
    is_out_of_memory,
    parse_memory_mb,
    with_backoff,
)
from aebench.sampler import Sampler

CPU = torch.device("cpu")


@pytest.mark.parametrize("text, mb", [("512M", 512), ("1.5G", 1536), ("2GB", 2048), (800, 800), ("64 MiB", 64)])
def test_memory_sizes_parse(text, mb):
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("bad", ["lots", "-1G", "0", "5T", True])
def test_bad_memory_sizes_are_refused(bad):
    with pytest.raises(OptionError):
        parse_memory_mb(bad)


def test_the_documented_batch_size_rule():
    from aebench.extractors.fast import FastPixels
    from aebench.extractors.inception import Inception

    # Inception on a CPU: 256 MiB / 16 MiB per image = 16 images; the AE keeps its own, larger batch
    assert feature_batch_size(Inception.memory_per_image_mb, CPU) == DEFAULT_BATCH_MEMORY_CPU_MB // 16 == 16
    assert feature_batch_size(Inception.memory_per_image_mb, CPU, batch_memory="2G") == 128
    assert feature_batch_size(Inception.memory_per_image_mb, CPU, batch_memory="1M") == 1  # never 0
    assert feature_batch_size(FastPixels.memory_per_image_mb, CPU) == 512  # capped
    assert feature_batch_size(Inception.memory_per_image_mb, CPU, given=7) == 7
    assert ae_batch_size(CPU) == 128 and ae_batch_size(CPU, 16) == 16


def test_backoff_halves_on_out_of_memory_and_keeps_the_size_that_worked():
    tried = []

    def work(size):
        tried.append(size)
        if size > 12:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return size * 10

    notes = []
    result, size = with_backoff(work, 100, on_backoff=lambda s, e: notes.append(s))
    assert (result, size) == (120, 12) and tried == [100, 50, 25, 12] and notes == [50, 25, 12]


def test_backoff_lets_other_errors_and_a_hopeless_size_through():
    with pytest.raises(ValueError):
        with_backoff(lambda size: (_ for _ in ()).throw(ValueError("not memory")), 8)
    tried = []

    def always(size):
        tried.append(size)
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 999 bytes")

    with pytest.raises(RuntimeError, match="can't allocate"):
        with_backoff(always, 8)
    assert tried == [8, 4, 2, 1]
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("shape mismatch"))


# -- in a run -------------------------------------------------------------------------------------------

def _run(tmp_path: Path, ckpt: Path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    rc = main(["run", "--checkpoint", str(ckpt), "--set", "dataset.size=32", "--features", "fast", "--n", "40",
               "--quiet", "--no-figures", "--out", str(out), "--threads", "1", *extra])
    doc = json.loads((out / "results.json").read_text())
    doc["rc"] = rc
    return doc


def test_out_of_memory_in_decode_and_features_backs_off_and_the_numbers_stay(tmp_path, tiny_orl_checkpoint, monkeypatch):
    import aebench.feature_extractor
    import aebench.models.encoding

    plain = _run(tmp_path, tiny_orl_checkpoint, "plain", "--sampler", "gaussian,pca", "--batch-size", "8",
                 "--feature-batch-size", "8")
    real_decode, real_extract = aebench.models.encoding.decode_latents, aebench.feature_extractor.extract_features
    seen = {"decode": [], "features": []}

    def decode(model, latents, batch_size=256, *args, **kw):
        seen["decode"].append(batch_size)
        if batch_size > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real_decode(model, latents, batch_size, *args, **kw)

    def extract(module, images, batch_size=64, *args, **kw):
        seen["features"].append(batch_size)
        if batch_size > 8:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 GB")
        return real_extract(module, images, batch_size, *args, **kw)

    monkeypatch.setattr(aebench.models.encoding, "decode_latents", decode)
    monkeypatch.setattr(aebench.feature_extractor, "extract_features", extract)
    doc = _run(tmp_path, tiny_orl_checkpoint, "oom", "--sampler", "gaussian,pca", "--batch-size", "32",
               "--feature-batch-size", "32")
    assert doc["rc"] == 0 and all(r["status"] == "ok" for r in doc["samplers"])
    # halved once per size on the first call, then the smaller size is kept for the rest of the run
    assert seen["decode"][:3] == [32, 16, 8] and set(seen["decode"][3:]) == {8}
    assert seen["features"][:3] == [32, 16, 8] and set(seen["features"][3:]) == {8}
    assert [b["what"] for b in doc["environment"]["backoffs"]] == ["decode", "decode", "features", "features"]
    for a, b in zip(plain["samplers"], doc["samplers"]):  # same batch size in the end: same numbers
        assert {k: v["value"] for k, v in a["metrics"].items()} == {k: v["value"] for k, v in b["metrics"].items()}


class _Huge(Sampler):
    name = "huge"
    description = "latents the (patched) decoder cannot take"

    def _sample(self, n, generator):
        return torch.full((n, self.latent_dim), 1e6)


class _Plugin:
    @hookimpl
    def register_samplers(self, register):
        register(_Huge)


def test_a_decode_failure_fails_that_sampler_only(tmp_path, tiny_orl_checkpoint, monkeypatch):
    import aebench.models.encoding

    real_decode = aebench.models.encoding.decode_latents

    def decode(model, latents, *args, **kw):
        if latents.abs().max() > 1e5:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_decode(model, latents, *args, **kw)

    monkeypatch.setattr(aebench.models.encoding, "decode_latents", decode)
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(_Plugin(), name="huge-plugin")
    doc = _run(tmp_path, tiny_orl_checkpoint, "fail", "--sampler", "gaussian,huge,pca")
    rows = {r["name"]: r for r in doc["samplers"]}
    assert doc["rc"] == 1 and doc["status"] == "complete"
    assert rows["huge"]["status"] == "failed" and "decode" in rows["huge"]["error"]
    assert "illegal memory access" in rows["huge"]["error"]
    assert rows["gaussian"]["status"] == rows["pca"]["status"] == "ok"


def test_separate_batch_sizes_reach_their_steps(tmp_path, tiny_orl_checkpoint, monkeypatch):
    import aebench.feature_extractor
    import aebench.models.encoding

    sizes = {"decode": set(), "encode": set(), "features": set()}
    for mod, name, key in ((aebench.models.encoding, "decode_latents", "decode"), (aebench.models.encoding, "encode_images", "encode"),
                           (aebench.feature_extractor, "extract_features", "features")):
        real = getattr(mod, name)

        def spy(first, second, batch_size=None, *args, _real=real, _key=key, **kw):
            sizes[_key].add(batch_size)
            return _real(first, second, batch_size, *args, **kw)

        monkeypatch.setattr(mod, name, spy)
    doc = _run(tmp_path, tiny_orl_checkpoint, "sizes", "--sampler", "gaussian", "--batch-size", "24",
               "--feature-batch-size", "5")
    assert doc["rc"] == 0
    assert sizes == {"decode": {24}, "encode": {24}, "features": {5}}
    assert doc["environment"]["batch_size"] == 24 and doc["environment"]["feature_batch_size"] == 5
    assert doc["features"]["device"] == "cpu" and doc["features"]["precision"] == "fp32"


@pytest.mark.parametrize("n, size", [(80, 32), (10, 32), (128, 32), (129, 32), (1, 1), (7, 3), (1000, 128),
                                     (37, 16), (47, 16), (15, 16), (100, 8)])
def test_feature_batches_are_near_equal_and_cover_every_image(n, size):
    from aebench.feature_extractor import MIN_BATCH, even_batches

    bounds = even_batches(n, size)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [stop - start for start, stop in bounds]
    assert max(lengths) - min(lengths) <= 1
    smallest = min(MIN_BATCH, size)
    # no batch below min(16, size) unless the whole set is smaller; none above size by 16 or more
    assert min(lengths) >= min(n, smallest)
    assert max(lengths) <= max(size, 2 * smallest - 1)
    if n // -(-n // size) >= smallest:
        assert len(bounds) == -(-n // size) and max(lengths) <= size  # as few batches as the size allows
    assert even_batches(0, 8) == []


def test_small_batches_are_merged_so_features_do_not_depend_on_the_batch_size():
    """1x1 convolutions take another kernel for batches under 16 on one thread: a remainder batch of
    5 would change the numbers; merged batches keep them."""
    from aebench.feature_extractor import even_batches

    assert even_batches(37, 16) == [(0, 19), (19, 37)]
    assert even_batches(80, 16) == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 80)]
    assert even_batches(10, 16) == [(0, 10)]
