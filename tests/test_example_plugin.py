"""A third-party sampler package is found through its `aebench` entry point, exactly as pip would
install it: a dist-info folder with METADATA and entry_points.txt beside the module on sys.path.
(Installing into the shared venv is not allowed here, and a throwaway venv would be too slow.)
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import aebench.plugins
from aebench.cli import main
from aebench.errors import DuplicateNameError
from aebench.stats import compute_stats

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aebench-example-sampler"
SAMPLER_MODULES = tuple(m for m in aebench.plugins.DEFAULT_PLUGINS if m.startswith("aebench.samplers."))
DUPLICATE_SOURCE = """
from aebench import hookimpl
from aebench.sampler import Sampler


class AnotherJitter(Sampler):
    name = {name!r}
    description = "Clashes with another plugin's sampler name."


@hookimpl
def register_samplers(register):
    register(AnotherJitter)
"""


def install_fake_dist(root: Path, dist: str, version: str, entry: str, module: str, source: str) -> None:
    """What `pip install` leaves behind: the module plus <dist>-<version>.dist-info with an entry point."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aebench]\n{entry} = {module}\n")


@pytest.fixture()
def site(tmp_path, monkeypatch):
    """A fresh site-packages-like folder on sys.path, the example installed into it, only sampler built-ins."""
    install_fake_dist(tmp_path, "aebench-example-sampler", "0.1", "example_sampler", "aebench_example_sampler",
                      (EXAMPLE / "aebench_example_sampler.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(aebench.plugins, "DEFAULT_PLUGINS", SAMPLER_MODULES)
    monkeypatch.delenv("AEBENCH_NO_PLUGINS", raising=False)
    monkeypatch.delenv("AEBENCH_LOAD_PLUGINS", raising=False)
    aebench.plugins.reset()
    yield tmp_path
    aebench.plugins.reset()
    for module in ("aebench_example_sampler", "aebench_dup_sampler"):
        sys.modules.pop(module, None)


def test_entry_point_sampler_is_found_and_works(site):
    pm = aebench.plugins.get_plugin_manager()
    assert pm.get_plugin("example_sampler") is sys.modules["aebench_example_sampler"]
    entry = aebench.plugins.get_registry("sampler").entry("jitter")
    assert entry.plugin == "example_sampler"
    latents = torch.randn(100, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sampler = entry.obj(noise=0.5).fit(latents, compute_stats(latents))
    assert sampler.sample(10, torch.Generator().manual_seed(1)).latents.shape == (10, 6)


def test_plugins_and_samplers_commands_list_it(site, capsys):
    assert main(["plugins", "--json", "--external"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "example_sampler", "builtin": False, "version": "0.1",
                     "registered": {"sampler": ["jitter"]}, "distribution": "aebench-example-sampler"}]
    assert main(["samplers", "--json", "jitter"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["plugin"] == "example_sampler" and row["options"][0]["name"] == "noise"


def test_environment_switches_hide_or_select_installed_plugins(site, monkeypatch):
    monkeypatch.setenv("AEBENCH_NO_PLUGINS", "1")
    aebench.plugins.reset()
    registry = aebench.plugins.get_registry("sampler")
    assert "jitter" not in registry and "gmm" in registry  # built-ins always load
    monkeypatch.delenv("AEBENCH_NO_PLUGINS")
    monkeypatch.setenv("AEBENCH_LOAD_PLUGINS", "some_other_plugin")
    aebench.plugins.reset()
    assert "jitter" not in aebench.plugins.get_registry("sampler")
    monkeypatch.setenv("AEBENCH_LOAD_PLUGINS", "example_sampler")
    aebench.plugins.reset()
    assert "jitter" in aebench.plugins.get_registry("sampler")


@pytest.mark.parametrize("clashing_name, other_plugin", [("jitter", "example_sampler"),
                                                         ("gmm", "aebench.samplers.gmm")])
def test_a_duplicate_sampler_name_is_an_error_naming_both_plugins(site, clashing_name, other_plugin):
    install_fake_dist(site, "aebench-dup-sampler", "0.2", "dup_sampler", "aebench_dup_sampler",
                      textwrap.dedent(DUPLICATE_SOURCE.format(name=clashing_name)))
    aebench.plugins.reset()
    with pytest.raises(DuplicateNameError, match=f"Duplicate sampler name '{clashing_name}'") as info:
        aebench.plugins.get_registry("sampler")
    assert "dup_sampler" in str(info.value) and other_plugin in str(info.value)
