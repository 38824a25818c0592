"""Two runs that share one cache folder and start at the same moment, both needing the same model to be
trained and the same latents, statistics and features to be computed: each cache entry is written by
one of them while the other waits for it (saying so) and reuses it; no entry is torn, and both results
documents are valid and hold the same numbers. Two real processes, not threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter

from test_cells import numbers_only

from aebench.results.schema import check_results

RUN = textwrap.dedent('''
    import os, pathlib, sys, time
    from contextlib import contextmanager

    import aebench.infra.io as io  # before anything imports atomic_path by name

    log, cache, out, go = (pathlib.Path(a) for a in sys.argv[1:5])
    real_atomic_path = io.atomic_path

    @contextmanager
    def logged_atomic_path(path):
        with real_atomic_path(path) as tmp:
            yield tmp
        if pathlib.Path(path).is_relative_to(cache):  # one line per cache file this process wrote
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {pathlib.Path(path).relative_to(cache)}\\n")

    io.atomic_path = logged_atomic_path
    import aebench.models.training as training

    training.AUTO_STEPS = 20  # a few steps: the test is about the cache, not the model
    real_train = training.train_and_save

    def slow_train(*args, **kwargs):  # hold the model's lock long enough for the other run to find it held
        time.sleep(3)
        return real_train(*args, **kwargs)

    training.train_and_save = slow_train
    from aebench.cli import main

    while not go.exists():
        time.sleep(0.01)
    sys.exit(main(["run", "--dataset", "orl_faces", "--set", "dataset.size=16", "--latent-dim", "8", "--features",
                   "fast", "--n", "32", "--sampler", "gaussian,pca", "--metrics", "fid,latent_fd", "--no-figures",
                   "--quiet", "--threads", "1", "--cache-dir", str(cache), "--out", str(out)]))
''')


def test_two_runs_sharing_a_cache_compute_each_entry_once(tmp_path):
    script, log, cache, go = tmp_path / "run.py", tmp_path / "writes.log", tmp_path / "cache", tmp_path / "go"
    script.write_text(RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    procs = [subprocess.Popen([sys.executable, str(script), str(log), str(cache), str(tmp_path / f"out{i}"), str(go)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in (1, 2)]
    time.sleep(0.5)
    go.touch()  # both start together (their imports are done by now, or nearly)
    outputs = [p.communicate(timeout=600) for p in procs]
    errs = [err.decode() for _, err in outputs]
    assert [p.returncode for p in procs] == [0, 0], errs
    writes = Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())
    kinds = {path.split("/")[0] for path in writes}
    assert {"models", "features"} <= kinds, writes
    assert any(path.endswith("model.safetensors") for path in writes)
    assert any("/latents-" in path for path in writes) and any("/stats-" in path for path in writes)
    assert all(count == 1 for count in writes.values()), writes  # each entry made by one run only
    assert any("Waiting for another aebench process that is computing the model for orl_faces" in e for e in errs), errs
    docs = [check_results(json.loads((tmp_path / f"out{i}" / "results.json").read_text())) for i in (1, 2)]
    assert all(d["status"] == "complete" for d in docs)
    assert numbers_only(docs[0]) | {"config": None} == numbers_only(docs[1]) | {"config": None}
    from aebench.caches.features import load_verified

    assert all(load_verified(p) is not None for p in (cache / "features").glob("*.safetensors"))  # none torn
