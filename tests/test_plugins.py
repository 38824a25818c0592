"""The plugin core: hooks, registries, misspelt hooks, and every hook documented and exercised."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

import aebench.plugins
from aebench import hookspecs
from aebench.cli import main
from aebench.errors import AebenchError, DuplicateNameError, UnknownNameError
from aebench.hookspecs import hookimpl
from aebench.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


def test_every_kind_has_a_hook_and_every_hook_a_kind():
    assert sorted(h for h, _ in aebench.plugins.KINDS.values()) == sorted(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_used_by_a_builtin(hook):
    readme = (ROOT / "README.md").read_text()
    assert f"`{hook}(register)`" in readme, f"{hook} is not documented in README.md"
    pm = aebench.plugins.get_plugin_manager()
    impls = getattr(pm.hook, hook).get_hookimpls()
    assert any(i.plugin_name in aebench.plugins.DEFAULT_PLUGINS for i in impls), f"no built-in implements {hook}"
    kind = next(k for k, (h, _) in aebench.plugins.KINDS.items() if h == hook)
    assert len(aebench.plugins.get_registry(kind)) >= 1


def test_misspelt_hook_implementation_is_a_clear_error(tmp_path, capsys):
    plugin = tmp_path / "misspelt.py"
    plugin.write_text("from aebench import hookimpl\n\n\n@hookimpl\ndef register_sampler(register):  # no 's'\n"
                      "    pass\n")
    assert main(["--plugin", str(plugin), "samplers"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("Error: A plugin implements an unknown hook") and "register_sampler" in err
    assert "Fix the hook name in that plugin." in err


def test_plugin_file_that_does_not_exist_or_fails_to_import(tmp_path, capsys):
    assert main(["--plugin", str(tmp_path / "nope.py"), "samplers"]) != 0
    assert "not a Python file" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('boom')\n")
    assert main(["--plugin", str(broken), "samplers"]) != 0
    assert "failed to import: ValueError: boom" in capsys.readouterr().err


def test_unknown_name_in_load_plugins_warns(monkeypatch):
    monkeypatch.setenv("AEBENCH_LOAD_PLUGINS", "no-such-plugin")
    aebench.plugins.reset()
    with pytest.warns(UserWarning, match="AEBENCH_LOAD_PLUGINS names 'no-such-plugin', which no installed plugin"):
        aebench.plugins.get_plugin_manager()
    assert "gaussian" in aebench.plugins.get_registry("sampler")  # built-ins still load


def test_author_api_imports_from_the_top_level_package():
    import aebench
    from aebench.metric import Column, Metric
    from aebench.options import option
    from aebench.sampler import Sampler
    from aebench.stats import LatentStats

    assert (aebench.Sampler, aebench.Metric, aebench.Column, aebench.option, aebench.LatentStats) == (
        Sampler, Metric, Column, option, LatentStats)
    for name in aebench.__all__:
        assert getattr(aebench, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Samplerr'"):
        aebench.Samplerr  # noqa: B018


def test_unknown_name_suggests_the_closest_and_lists_all():
    registry = Registry("sampler")

    class A:
        name = "plane_paths"

    class B:
        name = "gaussian"

    registry.add(A, plugin="x")
    registry.add(B, plugin="x")
    with pytest.raises(UnknownNameError) as err:
        registry.get("plane_path")
    assert str(err.value) == "Unknown sampler 'plane_path'. Did you mean 'plane_paths'? Available: gaussian, plane_paths"
    with pytest.raises(DuplicateNameError, match="registered by plugins 'x' and 'y'"):
        registry.add(A, plugin="y")


def test_registry_rejects_objects_of_the_wrong_kind():
    from aebench.sampler import Sampler

    class NotASampler:
        name = "thing"

    with pytest.raises(AebenchError, match="not a subclass"):
        Registry("sampler", base=Sampler).add(NotASampler, plugin="p")


def test_plugin_whose_hook_raises_gets_a_clear_error():
    class Broken:
        @hookimpl
        def register_regions(self, register):
            raise RuntimeError("oops")

    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(Broken(), name="broken-plugin")
    with pytest.raises(AebenchError, match="Plugin 'broken-plugin' failed in register_regions: RuntimeError: oops"):
        aebench.plugins.get_registry("region")


def test_plugins_command_lists_builtins_and_what_they_registered(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["aebench.samplers.plane_paths"]["registered"] == {"sampler": ["plane_paths"]}
    assert rows["aebench.data.orl_faces"]["builtin"] is True
    assert "inception" in rows["aebench.extractors.inception"]["registered"]["feature extractor"]
