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


def test_misspelt_hook_implementation_is_caught():
    class Misspelt:
        @hookimpl
        def register_sampler(self, register):  # missing the "s"
            pass

    aebench.plugins.reset()
    pm = aebench.plugins.get_plugin_manager()
    pm.register(Misspelt(), name="misspelt")
    with pytest.raises(Exception, match="register_sampler"):
        pm.check_pending()


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
    assert "inception" in rows["aebench.features.inception"]["registered"]["feature extractor"]
