"""Every option of every plugin can be discovered from the CLI: `aebench regions`, `metrics`,
`extractors` and `architectures` list each registered plugin with all its options."""

from __future__ import annotations

import dataclasses
import json

import pytest

from aebench.cli import main
from aebench.plugins import get_registry

KINDS = [("regions", "region"), ("metrics", "metric"), ("extractors", "feature extractor"),
         ("architectures", "architecture"), ("samplers", "sampler"), ("datasets", "dataset")]


@pytest.mark.parametrize("command, kind", KINDS)
def test_every_option_of_every_plugin_is_listed(command, kind, capsys):
    assert main([command, "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    registry = get_registry(kind)
    assert set(rows) == set(registry.names())
    for name in registry.names():
        fields = {f.name for f in dataclasses.fields(registry.get(name).Options)}
        listed = {o["name"] for o in rows[name]["options"]}
        assert listed == fields, (name, fields - listed)
        assert all(o["help"] for o in rows[name]["options"]), f"{name} has an option without help"


def test_tables_show_options_and_how_to_set_them(capsys):
    assert main(["metrics", "kid"]) == 0
    out = capsys.readouterr().out
    assert "subset_size" in out and "[metric_options.kid]" in out and "--set kid.OPTION=VALUE" in out
    assert main(["extractors"]) == 0
    out = capsys.readouterr().out
    assert "2048" in out and "inception" in out and "fast" in out
    assert main(["regions", "knn", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "knn" and row["options"][0]["name"] == "k" and row["options"][0]["default"] == 3


def test_unknown_name_is_a_one_line_error(capsys):
    assert main(["regions", "boxx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "Error: Unknown region 'boxx'. Did you mean 'box'? Available: box, density, ellipsoid, knn"
