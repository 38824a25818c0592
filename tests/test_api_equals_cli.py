"""The Python API and the CLI are one run: the same settings through `aebench.cli.main([...])` and through
`RunConfig` + `run_benchmark` give the same results document (timing, dates and paths aside); every mode is
resolved by `RunConfig.from_sources`, so the API gets latent-file mode, `all` and `--model CKPT` too."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aebench.cli import main
from aebench.errors import OptionError
from aebench.run.config import LATENT_METRICS, RunConfig
from aebench.run.runner import run_benchmark

VOLATILE = {"created", "finished", "timing", "out", "threads", "path", "cache_dir"}


def _stable(value):
    """The document without what differs between two identical runs: times, dates, paths, threads."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("_s")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_the_cli_and_the_python_api_write_the_same_document(tmp_path, tiny_orl_checkpoint):
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    rc = main(["run", "--model", str(tiny_orl_checkpoint), "--set", "dataset.size=32", "--features", "fast",
               "--n", "40", "--seed", "3", "--seeds", "2", "--sampler", "gaussian,plane_paths",
               "--set", "plane_paths.angles=0,90", "--metrics", "region_hits,latent_fd,fid", "--quiet", "--no-figures",
               "--out", str(cli_out)])
    assert rc == 0
    config = RunConfig.from_dict({"model": str(tiny_orl_checkpoint), "dataset_options": {"size": 32}, "features": "fast",
                                  "n": 40, "seed": 3, "seeds": 2,
                                  "samplers": ["gaussian", {"name": "plane_paths", "options": {"angles": [0, 90]}}],
                                  "metrics": ["region_hits", "latent_fd", "fid"], "figures": False, "out": str(api_out)})
    api_doc = run_benchmark(config, quiet=True)
    cli_doc = json.loads((cli_out / "results.json").read_text())
    assert cli_doc["config"]["dataset_options"] == {"size": 32}  # '32' from --set is the same setting as 32
    assert cli_doc["config"]["samplers"][1]["options"] == {"angles": [0.0, 90.0]}
    assert cli_doc["config"]["checkpoint"] == str(tiny_orl_checkpoint) and cli_doc["config"]["model"] is None
    assert cli_doc["plan"]["hash"] == api_doc["plan"]["hash"]
    assert _stable(cli_doc) == _stable(json.loads(json.dumps(api_doc)))


def test_latent_files_mean_the_same_through_the_api(tmp_path, tiny_orl_checkpoint):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(100, 16)).astype(np.float32))
    np.save(tmp_path / "heldout.npy", rng.normal(size=(40, 16)).astype(np.float32))
    files = {"train_latents": str(tmp_path / "train.npy"), "heldout_latents": str(tmp_path / "heldout.npy"),
             "checkpoint": str(tiny_orl_checkpoint)}
    config = RunConfig.from_sources(overrides=files)
    assert config.dataset is None and config.metrics == list(LATENT_METRICS)
    with_data = RunConfig.from_sources(overrides={**files, "dataset": "orl_faces", "dataset_options": {"size": 32}})
    assert with_data.dataset == "orl_faces" and "fid" in with_data.metrics  # a data set named: its images stay
    chosen = RunConfig.from_dict({**files, "metrics": ["region_hits"]})
    assert chosen.dataset is None and chosen.metrics == ["region_hits"]


def test_all_and_model_resolve_the_same_everywhere(tmp_path, tiny_orl_checkpoint):
    from aebench.sampler import available_samplers

    notes: list[str] = []
    every = RunConfig.from_sources(overrides={"samplers": "all"}, notify=notes.append)
    assert [s.name for s in every.samplers] == available_samplers()
    suite = tmp_path / "suite.toml"
    suite.write_text('samplers = "all"\n')
    assert [s.name for s in RunConfig.from_sources(suite).samplers] == available_samplers()
    assert RunConfig.from_dict({"model": "pkg.mod:make"}).model == "pkg.mod:make"
    assert RunConfig.from_dict({"model": str(tiny_orl_checkpoint)}).checkpoint == str(tiny_orl_checkpoint)
    with pytest.raises(OptionError, match="either --checkpoint or --model"):
        RunConfig.from_dict({"model": str(tiny_orl_checkpoint), "checkpoint": str(tmp_path / "other.safetensors")})


@pytest.mark.parametrize("command, message", [
    (["train", "--seed", "1"], "--model-seed N"),
    (["stats", "--seed", "1"], "--model-seed N"),
])
def test_old_seed_spellings_say_what_to_write(command, message, capsys):
    """`--seed` is the run's first seed everywhere; the model's training seed is `--model-seed`."""
    assert main(command) == OptionError.exit_code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "first sampling seed" in err


def test_run_and_validate_flags_mean_the_same(tiny_orl_checkpoint):
    """Every option the two commands share is the same declaration (the same help), and --model-seed reaches
    the run's model_seed in both."""
    import click

    from aebench.cli import _load_commands, cli
    from aebench.commands.run import config_from_options

    _load_commands()
    ctx = click.Context(cli)
    run, validate = cli.commands["run"], cli.commands["validate"]
    shared = {p.name for p in run.params} & {p.name for p in validate.params}
    assert {"model", "model_seed", "seed", "assignments", "batch_size"} <= shared
    for name in shared - {"n"}:  # validate's --n also sizes the ladders' default --size
        a = next(p for p in run.params if p.name == name).get_help_record(ctx)
        b = next(p for p in validate.params if p.name == name).get_help_record(ctx)
        assert a == b, name
    assert config_from_options(model_seed=4).model_seed == 4
