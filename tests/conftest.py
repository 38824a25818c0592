"""Shared fixtures: every test gets its own aebench cache folder and a fresh plugin manager."""

from __future__ import annotations

import pytest
import torch

import aebench.plugins
from aebench.testing import isolated_aebench, use_only_plugins  # noqa: F401  (shared with benchmarks/)

# fixtures that train a model or run the whole pipeline: a test using one is `slow` (the fast loop is
# `pytest -m "not slow"`)
SLOW_FIXTURES = {"tiny_model", "tiny_orl_checkpoint", "toy_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models and small matrices run fastest on one thread, and CI's two cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ real tiny runs for report tests

TOY_SAMPLERS = (("gaussian", "gaussian", ()), ("origin_line", "origin_line", ()), ("uniform", "uniform", ()),
                ("correlated", "correlated", ()),
                ("plane_paths", "plane_conditional", (("others", "conditional"),)))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(checkpoint, cache folder): a small conv AE trained for four epochs on 32x32 ORL faces (seconds). Four,
    not two: it must reconstruct held-out faces better than the mean face (held-out MSE 0.0166 vs 0.0219;
    two epochs gave 0.0257, a model every run would warn about, see aebench.run.model_check)."""
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    cache = tmp_path_factory.mktemp("tiny-model-cache")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=cache)
        out = tmp_path_factory.mktemp("tiny-model") / "model.safetensors"
        train_and_save(dataset, out, latent_dim=16, model_options={"channels": (8, 16, 32)}, epochs=4, seed=0,
                       progress=False)
    finally:
        torch.set_num_threads(before)
    return out, cache


@pytest.fixture(scope="session")
def tiny_orl_checkpoint(tiny_model):
    """The checkpoint of `tiny_model` alone, for tests that pass it on the command line with
    `--set dataset.size=32`."""
    return tiny_model[0]


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory, tiny_model):
    """`toy_run(samplers=..., seeds=..., metrics=..., n=..., features=...)`: the results document of a
    real `aebench run` on the tiny model with the third-party metrics of tests/toy_metrics.py (run once
    per argument set in a session; each call gets its own copy). Its folder is doc["config"]["out"]."""
    import copy

    from toy_metrics import TOY_METRICS, ToyMetricsPlugin

    from aebench.run.config import RunConfig, SamplerSpec
    from aebench.run.runner import run_benchmark

    checkpoint, cache = tiny_model
    done: dict = {}

    def run(samplers=TOY_SAMPLERS, seeds=(0, 1, 2), metrics=tuple(TOY_METRICS), n=48, features="fast",
            figures=False, fresh=False) -> dict:
        """`fresh=True` runs again instead of reusing the session's run (a test that patches the code)."""
        key = (tuple(samplers), tuple(seeds), tuple(metrics), n, features, figures)
        if fresh:
            done.pop(key, None)
        if key not in done:
            out = tmp_path_factory.mktemp("toy-run")
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("AEBENCH_NO_PLUGINS", "1")
                aebench.plugins.reset()
                aebench.plugins.get_plugin_manager().register(ToyMetricsPlugin(), name="toy-metrics")
                try:
                    config = RunConfig(
                        dataset="orl_faces", dataset_options={"size": 32}, checkpoint=str(checkpoint),
                        samplers=[SamplerSpec(name, label, dict(opts)) for name, label, opts in samplers],
                        n=n, seeds=list(seeds), metrics=list(metrics), features=features, out=str(out),
                        cache_dir=str(cache), figures=figures)
                    config.check()
                    done[key] = run_benchmark(config, quiet=True)
                finally:
                    aebench.plugins.reset()
        result = copy.deepcopy(done[key])
        if fresh:
            del done[key]  # a patched run is never reused
        return result

    return run
