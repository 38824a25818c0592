"""Determinism and faults: the same seed gives the same results document on the CPU; a run killed
mid-sampler (a real SIGKILL) leaves a valid document with the samplers it finished; a feature cache
entry damaged on disk is detected and recomputed, never used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from aebench.cli import main
from aebench.results.schema import SCHEMA
from aebench.testing import sigkill_when

DATA_OPTS = ["--set", "dataset.size=32"]
VOLATILE = ("created", "finished")  # wall-clock stamps
ROW_VOLATILE = ("timing",)  # seconds per stage


def _numbers_only(doc: dict) -> dict:
    """The document without wall-clock stamps, stage timings and the output folder's name."""
    doc = json.loads(json.dumps(doc))
    for key in VOLATILE:
        doc.pop(key, None)
    doc["config"].pop("out", None)
    for row in doc["samplers"] + doc["references"] + doc.get("cells", []) + list(doc.get("fits", {}).values()):
        for key in ROW_VOLATILE:
            row.pop(key, None)
    return doc


def test_same_seed_gives_an_identical_results_document(tmp_path, tiny_orl_checkpoint):
    docs = []
    for run in ("a", "b"):  # the second run reads the real features from the cache the first one wrote
        out = tmp_path / run
        rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--features", "fast", "--n", "40",
                   "--seed", "7", "--sampler", "gmm,interpolate,plane_paths", "--quiet", "--no-figures",
                   "--threads", "1", "--out", str(out)])
        assert rc == 0
        docs.append(json.loads((out / "results.json").read_text()))
    a, b = (_numbers_only(d) for d in docs)
    assert a == b
    # and the numbers are really there (not an empty document that trivially matches)
    assert {r["name"] for r in a["samplers"]} == {"gmm", "interpolate", "plane_paths"}
    assert all(r["status"] == "ok" and "fid" in r["metrics"] and "hit_knn" in r["metrics"] for r in a["samplers"])
    assert docs[0]["created"] and docs[0]["samplers"][0]["timing"]["total_s"] > 0


def test_another_seed_changes_the_numbers(tmp_path, tiny_orl_checkpoint):
    values = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        assert main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--features", "fast", "--n", "40",
                     "--seed", seed, "--sampler", "gaussian", "--metrics", "fid", "--quiet", "--no-figures",
                     "--out", str(out)]) == 0
        values.append(json.loads((out / "results.json").read_text())["samplers"][0]["metrics"]["fid"]["value"])
    assert values[0] != values[1]


KILLED_RUN = textwrap.dedent('''
    import pathlib, sys, time
    import aebench.plugins
    from aebench.cli import main
    from aebench.hookspecs import hookimpl
    from aebench.sampler import Sampler

    class Stall(Sampler):
        name = "stall"
        description = "announces itself, then waits to be killed"

        def _sample(self, n, generator):
            pathlib.Path(sys.argv[2]).write_text("sampling")
            time.sleep(600)

    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            register(Stall)

    aebench.plugins.get_plugin_manager().register(Plugin(), name="stall-plugin")
    sys.exit(main(["run", "--checkpoint", sys.argv[1], "--set", "dataset.size=32", "--features", "fast",
                   "--n", "32", "--sampler", "gaussian,uniform,stall,pca", "--quiet", "--no-figures",
                   "--threads", "1", "--out", sys.argv[3]]))
''')


def test_a_run_killed_mid_sampler_leaves_a_valid_document_with_the_finished_samplers(tmp_path, tiny_orl_checkpoint):
    script, marker, out = tmp_path / "killed_run.py", tmp_path / "marker", tmp_path / "out"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_orl_checkpoint), str(marker), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sigkill_when(proc, marker)
    doc = json.loads((out / "results.json").read_text())  # valid JSON, not a half-written file
    assert doc["schema"] == SCHEMA
    assert doc["status"] == "running" and doc["finished"] is None  # says it is not a complete run
    rows = {r["name"]: r for r in doc["samplers"]}
    assert list(rows) == ["gaussian", "uniform"]  # the finished ones, nothing of the killed or later ones
    assert all(r["status"] == "ok" and "fid" in r["metrics"] for r in rows.values())
    assert {r["name"] for r in doc["references"]} == {"real_heldout", "reconstruction"}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def _feature_cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "features").glob("*.safetensors"))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_feature_cache_entry_is_detected_and_recomputed(tmp_path, damage, monkeypatch):
    from aebench.caches import features as feature_cache

    folder = tmp_path / "features"
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(4000, dtype=torch.float32).reshape(100, 40) / 7

    value, cached = feature_cache.cached_tensor(folder, "k", compute)
    assert not cached and len(calls) == 1
    again, cached = feature_cache.cached_tensor(folder, "k", compute)
    assert cached and len(calls) == 1 and torch.equal(again, value)

    path = folder / "k.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) - 1000]))
    else:  # same length, one value changed: only the checksum can tell
        data[-10] ^= 0xFF
        path.write_bytes(bytes(data))
    assert feature_cache.load_verified(path) is None
    third, cached = feature_cache.cached_tensor(folder, "k", compute)
    assert not cached and len(calls) == 2 and torch.equal(third, value)
    assert feature_cache.load_verified(path) is not None  # rewritten whole


def test_a_run_recomputes_a_truncated_reference_entry(tmp_path, tiny_orl_checkpoint):
    cache = tmp_path / "cache"
    args = ["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--features", "fast", "--n", "40",
            "--sampler", "gaussian", "--metrics", "fid", "--quiet", "--no-figures", "--cache-dir", str(cache)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    entries = _feature_cache_files(cache)
    assert entries
    for path in entries:  # cut every entry short, as a full disk or a killed copy would
        path.write_bytes(path.read_bytes()[:200])
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "results.json").read_text()) for x in ("a", "b"))
    assert a["samplers"][0]["metrics"]["fid"]["value"] == b["samplers"][0]["metrics"]["fid"]["value"]
    from aebench.caches.features import load_verified

    assert all(load_verified(p) is not None for p in _feature_cache_files(cache))
