"""Extension points with no silent gaps: one executor table, a checked vocabulary for a metric's `needs`, path
samples that must agree with their latents, one namespace for the names `--set` addresses, and one options
style for every plugin kind. Each mistake fails where it is made, with a line that names the fix."""

from __future__ import annotations

import dataclasses
import textwrap

import click
import pytest
import torch

import aebench.plugins
from aebench.cli import main
from aebench.errors import AebenchError, DuplicateNameError, OptionError
from aebench.executors import EXECUTORS, ExecutorEntry, make_executor
from aebench.executors.local import LocalExecutor
from aebench.metric import NEEDS, Metric
from aebench.options import check_options_class, option
from aebench.sampler import Sampler, Samples
from aebench.stats import compute_stats

# ---------------------------------------------------------------- executors


def test_the_cli_offers_exactly_the_executor_table():
    import aebench.commands.run  # noqa: F401  (registers the command)
    from aebench.cli import cli

    executor = next(p for p in cli.commands["run"].params if p.name == "executor")
    assert isinstance(executor.type, click.Choice) and list(executor.type.choices) == list(EXECUTORS)
    for name, entry in EXECUTORS.items():
        assert f"{name}: {entry.help}" in (executor.help or "")


class CountingExecutor(LocalExecutor):
    """A local executor with a setting of its own, as a new engine would add one."""

    name = "counting"

    def __init__(self, limit: int | None = None):
        super().__init__()
        self.limit = limit


def test_a_new_table_entry_is_made_with_its_own_settings(monkeypatch):
    monkeypatch.setitem(EXECUTORS, "counting", ExecutorEntry(f"{__name__}:CountingExecutor", ("limit",), "test"))
    made = make_executor("counting", limit=3)
    assert isinstance(made, CountingExecutor) and made.limit == 3
    with pytest.raises(OptionError, match="--workers is a setting of --executor dask, not of counting"):
        make_executor("counting", workers=2)
    assert isinstance(make_executor("local", workers=None), LocalExecutor)  # a setting left None is not given


def test_an_unknown_executor_is_named_with_a_suggestion():
    with pytest.raises(OptionError, match=r"Unknown executor 'dusk'\. Did you mean 'dask'\? Use one of: local, dask"):
        make_executor("dusk")


# ---------------------------------------------------------------- a metric's needs


def plugin_file(tmp_path, body: str) -> str:
    path = tmp_path / "plugin.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return str(path)


def test_a_misspelt_need_is_refused_at_registration_with_the_allowed_words(tmp_path, capsys):
    plugin = plugin_file(tmp_path, """
        from aebench import Column, Metric, MetricValue, hookimpl

        class Sharp(Metric):
            name = "sharpness"
            needs = frozenset({"latents", "imgs"})
            columns = (Column("sharpness", "sharpness", True),)

        @hookimpl
        def register_metrics(register):
            register(Sharp)
        """)
    assert main(["--plugin", plugin, "metrics"]) == 2
    err = capsys.readouterr().err
    assert "Plugin" in err and "registered metric 'sharpness': needs 'imgs'" in err
    assert "Did you mean 'images'?" in err and "latents, t, images, features, reencoded" in err


def test_needs_given_as_a_string_is_refused():
    class Typo(Metric):
        name = "typo"
        needs = "images"  # type: ignore[assignment]  # a string is a set of letters

    with pytest.raises(AebenchError, match="needs must be a set of words"):
        Typo.check_definition()


def test_every_need_a_built_in_metric_declares_is_a_word_the_runner_fills():
    """The runner's cells fill exactly the parts NEEDS names (aebench.run.cells.score)."""
    registry = aebench.plugins.get_registry("metric")
    used = {word for name in registry.names() for word in registry.get(name).needs}
    assert used <= set(NEEDS) and {"latents", "features", "reencoded"} <= used


# ---------------------------------------------------------------- path samples


class PathSampler(Sampler):
    name = "probe_paths"
    is_path_sampler = True

    def __init__(self, make):
        super().__init__()
        self.make = make

    def _sample(self, n, generator):
        return self.make(torch.zeros(n, 3), n)


def fitted(make) -> PathSampler:
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    return PathSampler(make).fit(z, compute_stats(z))


@pytest.mark.parametrize("make, message", [
    (lambda z, n: Samples(z), "is a path sampler but returned no path and t"),
    (lambda z, n: Samples(z, path=torch.zeros(n)), "returned `path` without `t`"),
    (lambda z, n: Samples(z, t=torch.zeros(n)), "returned `t` without `path`"),
    (lambda z, n: Samples(z, torch.zeros(n - 1), torch.zeros(n)), r"`path` of shape \(3,\) for 4 latents"),
    (lambda z, n: Samples(z, torch.zeros(n), torch.zeros(n, 1)), r"`t` of shape \(4, 1\) for 4 latents"),
    (lambda z, n: Samples(z, torch.tensor([0.0, 0.5, 1.0, 1.0]), torch.zeros(n)), "path ids that are not whole"),
    (lambda z, n: Samples(z, torch.tensor([0, -1, 1, 1]), torch.zeros(n)), r"negative path id \(-1\)"),
    (lambda z, n: Samples(z, torch.zeros(n), torch.tensor([0.0, float("nan"), 1.0, 1.0])), "t = nan at point 1"),
])
def test_path_arrays_that_disagree_with_the_latents_are_refused(make, message):
    with pytest.raises(AebenchError, match=message):
        fitted(make).sample(4, torch.Generator().manual_seed(0))


def test_path_samples_that_agree_pass_and_t_may_run_past_the_end_points():
    """The `line` sampler extends a path before its start (t < 0) and beyond its end (t > 1) on purpose."""
    out = fitted(lambda z, n: Samples(z, torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([-0.5, 0.0, 1.0, 1.5]))
                 ).sample(4, torch.Generator().manual_seed(0))
    assert out.path.dtype == torch.int64 and out.path.tolist() == [0, 0, 1, 1] and out.t.tolist() == [-0.5, 0, 1, 1.5]


# ---------------------------------------------------------------- one namespace for --set


def test_a_sampler_named_like_a_region_is_refused(tmp_path, capsys):
    plugin = plugin_file(tmp_path, """
        from aebench import Sampler, hookimpl

        class Box(Sampler):
            name = "box"

        @hookimpl
        def register_samplers(register):
            register(Box)
        """)
    assert main(["--plugin", plugin, "run", "--sampler", "box", "--set", "box.quantile=0.9",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "The name 'box' is registered twice: as a sampler by plugin" in err
    assert "as a region by plugin 'aebench.regions.box'" in err and "--set box.OPTION=VALUE" in err
    assert not (tmp_path / "out").exists()


def test_a_name_the_set_grammar_keeps_is_refused(monkeypatch):
    from aebench.hookspecs import hookimpl

    class Dataset(Sampler):
        name = "dataset"

    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            register(Dataset)

    aebench.plugins.get_plugin_manager().register(Plugin(), name="reserved")
    with pytest.raises(DuplicateNameError, match="sampler 'dataset', a name kept for the data set's options"):
        aebench.plugins.get_registry("metric")  # any kind of the shared namespace sees it


def test_built_in_names_are_unique_across_the_shared_kinds():
    names = [n for kind in aebench.plugins.SHARED_NAME_KINDS for n in aebench.plugins.get_registry(kind).names()]
    assert len(names) == len(set(names)) and not set(names) & set(aebench.plugins.RESERVED_NAMES)


# ---------------------------------------------------------------- one options style


def test_every_plugin_kind_uses_the_one_options_style():
    for kind in aebench.plugins.KINDS:
        registry = aebench.plugins.get_registry(kind)
        for name in registry.names():
            options = registry.get(name).Options
            assert dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen, (kind, name)
            assert all("help" in f.metadata for f in dataclasses.fields(options)), (kind, name)


@dataclasses.dataclass(frozen=True)
class Plain:
    k: int = 3


@dataclasses.dataclass
class Mutable:
    k: int = option(3, "components")


@dataclasses.dataclass(frozen=True)
class Unreadable:
    k: dict = option(None, "a mapping")  # type: ignore[type-arg]
    j: int = option("three", "components")


@pytest.mark.parametrize("cls, message", [
    (Plain, "option 'k' of Plain is a plain field; declare it with option"),
    (Mutable, "is not a frozen dataclass"),
    (Unreadable, r"option 'j': 'three' is not an integer\. Its default does not fit its type int"),
])
def test_an_options_class_of_another_style_is_refused(cls, message):
    with pytest.raises(OptionError, match=message):
        check_options_class(cls)


def test_a_plugin_with_a_plain_options_field_fails_at_registration(tmp_path, capsys):
    plugin = plugin_file(tmp_path, """
        from dataclasses import dataclass

        from aebench import Sampler, hookimpl

        class Jitter(Sampler):
            name = "jitter2"

            @dataclass(frozen=True)
            class Options:
                scale: float = 0.1

        @hookimpl
        def register_samplers(register):
            register(Jitter)
        """)
    assert main(["--plugin", plugin, "samplers"]) == 2
    assert "registered sampler 'jitter2': option 'scale' of Jitter.Options is a plain field" in capsys.readouterr().err


# ---------------------------------------------------------------- non-finite draws


class HalfBadSampler(Sampler):
    """Two draws NaN, one beyond float32 (a finite float64 that the float32 cast turns into Inf)."""

    name = "probe_nonfinite"

    def _sample(self, n, generator):
        z = torch.zeros(n, 3, dtype=torch.float64)
        z[0, 1] = float("nan")
        z[1] = float("nan")
        z[2, 0] = 1e300
        return z


def test_a_sampler_returning_nan_or_overflow_fails_its_cell_naming_it_and_the_count():
    from types import SimpleNamespace

    from aebench.run.cells import CellOptions, FitResult, _run_cell

    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    fit = FitResult("probe_nonfinite", HalfBadSampler().fit(z, compute_stats(z)), {}, {}, 0.0)
    setup = SimpleNamespace(config=SimpleNamespace(n=8, n_latent=None))
    result = _run_cell(fit, 0, setup, [], CellOptions(out="", draw=None, first_seed=0))
    assert result.error == ("seed 0: Sampler 'probe_nonfinite' returned NaN or Inf in 3 of 8 latent vectors (values "
                            "beyond float32's 3.4e38 become Inf); fix the sampler or its options.")
