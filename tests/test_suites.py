"""Suites mean what they say: `seeds` is a count or a list in TOML as on the command line, `seed` is
the first seed of a count, and command-line flags that replace a suite's settings say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aebench.cli import main
from aebench.commands.run import config_from_options
from aebench.errors import OptionError
from aebench.run.config import RunConfig


def _suite(tmp_path: Path, body: str) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(body + '\n[[samplers]]\nname = "gaussian"\nlabel = "g"\n[[samplers]]\nname = "gmm"\n')
    return str(path)


@pytest.mark.parametrize("body, seeds", [
    ("seeds = 3", [0, 1, 2]),  # a count, like --seeds 3 (it used to run seed number 3 alone)
    ("seeds = [0, 5]", [0, 5]),  # an explicit list
    ("seeds = [3]", [3]),
    ("seed = 2\nseeds = 3", [2, 3, 4]),  # a count from a first seed, like --seed 2 --seeds 3
    ("seed = 4", [4]),
    ("", [0]),
])
def test_toml_seeds_are_a_count_or_a_list(tmp_path, body, seeds):
    assert config_from_options(config_path=_suite(tmp_path, body)).seeds == seeds


def test_toml_and_command_line_seeds_mean_the_same(tmp_path):
    from_toml = config_from_options(config_path=_suite(tmp_path, "seeds = 3"))
    from_cli = config_from_options(n_seeds=3)
    assert from_toml.seeds == from_cli.seeds == [0, 1, 2]
    assert config_from_options(seed=5, n_seeds=2).seeds == [5, 6]


@pytest.mark.parametrize("body, flags, seeds", [
    ("seeds = 3", {"seed": 10}, [10, 11, 12]),  # --seed moves the suite's count
    ("seed = 2\nseeds = 3", {"n_seeds": 2}, [2, 3]),  # --seeds changes the count from the suite's first seed
    ("seeds = [0, 5]", {"n_seeds": 2}, [0, 1]),  # flags replace an explicit list
    ("seeds = [0, 5]", {"seed": 7}, [7]),
])
def test_command_line_seeds_replace_the_suites(tmp_path, body, flags, seeds):
    assert config_from_options(config_path=_suite(tmp_path, body), **flags).seeds == seeds


def test_python_api_reads_seeds_like_the_toml_file():
    assert RunConfig.from_dict({"seeds": 3}).seeds == [0, 1, 2]
    assert RunConfig.from_dict({"seeds": [4, 9]}).seeds == [4, 9]
    assert RunConfig.from_dict({"seed": 1, "seeds": 2}).seeds == [1, 2]
    with pytest.raises(OptionError, match="seeds must be a count"):
        RunConfig.from_dict({"seeds": "3"})


def test_a_notice_says_when_flags_replace_the_suites_samplers(tmp_path):
    notes: list[str] = []
    config = config_from_options(config_path=_suite(tmp_path, "n = 40\nseeds = 2"), samplers=("uniform",), n=64,
                                 notify=notes.append)
    assert [s.name for s in config.samplers] == ["uniform"] and config.n == 64
    assert len(notes) == 1
    assert "--sampler/--all replaces the suite's 2 sampler(s) (g, gmm)" in notes[0]
    assert "--n replaces n = 40" in notes[0] and "suite.toml" in notes[0]
    quiet: list[str] = []
    config_from_options(config_path=_suite(tmp_path, "n = 40"), notify=quiet.append)
    config_from_options(config_path=_suite(tmp_path, "n = 40"), n=40, notify=quiet.append)  # same value: no news
    assert quiet == []


def test_cli_prints_the_notice_and_runs_the_suite_seeds(tmp_path, tiny_orl_checkpoint, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'seeds = 2\nn = 24\nfeatures = "fast"\nmetrics = ["region_hits"]\ncheckpoint = "{tiny_orl_checkpoint}"\n'
                     'dataset_options = { size = 32 }\n[[samplers]]\nname = "gmm"\noptions = { k = 2 }\n')
    out = tmp_path / "out"
    rc = main(["run", "--config", str(suite), "--sampler", "gaussian", "--out", str(out), "--quiet", "--no-figures"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Note: the command line overrides suite.toml: --sampler/--all replaces the suite's 1 sampler(s) (gmm)" \
        in captured.err
    assert "pictures in" not in captured.out  # --no-figures: no figures folder to point at
    doc = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in doc["samplers"]] == ["gaussian"]
    assert doc["samplers"][0]["seeds"] == [0, 1]  # `seeds = 2` is two seeds


def test_toml_region_and_metric_options_reach_the_plugins(tmp_path):
    config = config_from_options(config_path=_suite(
        tmp_path, "region_options = { knn = { k = 5 } }\n[metric_options.kid]\nsubsets = 7"))
    assert config.region_options == {"knn": {"k": 5}} and config.metric_options == {"kid": {"subsets": 7}}
    with pytest.raises(OptionError, match="Unknown option 'knn.kk'"):
        config_from_options(config_path=_suite(tmp_path, "region_options = { knn = { kk = 5 } }"))


def test_model_means_a_checkpoint_or_a_factory_in_toml_as_on_the_command_line(tmp_path, tiny_orl_checkpoint):
    path = tmp_path / "suite.toml"
    path.write_text(f'model = "{tiny_orl_checkpoint}"\n')
    from_toml = config_from_options(config_path=str(path))
    from_cli = config_from_options(model=str(tiny_orl_checkpoint))
    assert from_toml.checkpoint == from_cli.checkpoint == str(tiny_orl_checkpoint)
    assert from_toml.model is None and from_cli.model is None
    assert RunConfig.from_dict({"model": "mypkg.mod:make"}).model == "mypkg.mod:make"
