"""The wheel holds every subpackage: pyproject's package list matches the folders on disk."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_package_list_matches_the_folders():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping = config["package-dir"]
    on_disk = set()
    for package, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join([package, *rel.parts])
            # a folder mapped on its own (aebench.samplers) is found from its own root only
            if not any(other != package and other.startswith(package + ".") and name.startswith(other)
                       for other in mapping):
                on_disk.add(name)
    assert sorted(config["packages"]) == sorted(on_disk), "update [tool.setuptools] packages in pyproject.toml"
