"""The writer and the schema cannot drift: the documents a real (tiny) `aebench run --validate` and
`aebench validate` write are checked field by field against the TypedDicts of aebench.results.schema:
every key written is declared, every value has the declared type, every required key is there."""

from __future__ import annotations

import json
from typing import Any

import pytest

import aebench.plugins
from aebench.cli import main
from aebench.hookspecs import hookimpl
from aebench.results.schema import ResultsDocument, check_results
from aebench.sampler import Sampler
from aebench.testing import shape_mismatches

DATA_OPTS = ["--set", "dataset.size=32", "--features", "fast", "--n", "40", "--quiet"]


class _FailsToSample(Sampler):
    name = "fails_to_sample"
    description = "raises when sampled (a failed row and failed cells)"

    def _fit(self, train_latents, stats):
        pass

    def _sample(self, n, generator):
        raise RuntimeError("no samples today")


class _Plugin:
    @hookimpl
    def register_samplers(self, register):
        register(_FailsToSample)


def _document(path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    check_results(doc)
    return doc


def test_a_run_with_validation_writes_only_declared_fields(tmp_path, tiny_orl_checkpoint):
    """Two seeds, a path sampler (along-t curve, figures), a sampler that fails, the ladders."""
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(_Plugin(), name="fails-plugin")
    out = tmp_path / "run"
    rc = main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--out", str(out), "--seeds", "2",
               "--sampler", "gaussian,origin_line,fails_to_sample", "--validate"])
    assert rc == 1  # the failing sampler
    doc = _document(out / "results.json")
    assert {"plan", "cells", "fits", "validation"} <= set(doc)
    assert any(row.get("along_t") for row in doc["samplers"]) and doc["validation"].get("figure")
    assert any(row["status"] == "failed" for row in doc["samplers"])
    assert shape_mismatches(doc, ResultsDocument) == []


def test_aebench_validate_writes_only_declared_fields(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "validate"
    rc = main(["validate", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--out", str(out),
               "--metrics", "region_hits,latent_fd,fid", "--steps", "3"])
    assert rc == 0
    doc = _document(out / "results.json")
    assert doc["validation"]["metrics"] and shape_mismatches(doc, ResultsDocument) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.update(surprise=1), "surprise: not declared in ResultsDocument"),
    (lambda d: d["samplers"][0].update(colour="red"), "samplers[0].colour: not declared in Row"),
    (lambda d: d["samplers"][0]["metrics"]["hit_box"].update(value="high"), "samplers[0].metrics.hit_box.value"),
    (lambda d: d.pop("status"), "status: required by ResultsDocument, missing"),
    (lambda d: d["plan"].update(n=True), "plan.n: True is not a int"),
])
def test_the_shape_check_names_what_departs_from_the_schema(tmp_path, tiny_orl_checkpoint, edit, expected):
    """The check itself can fail: each edit of a real document is named."""
    out = tmp_path / "run"
    assert main(["run", "--checkpoint", str(tiny_orl_checkpoint), *DATA_OPTS, "--out", str(out),
                 "--sampler", "gaussian", "--metrics", "region_hits", "--no-figures"]) == 0
    doc = json.loads((out / "results.json").read_text())
    edit(doc)
    assert any(expected in line for line in shape_mismatches(doc, ResultsDocument)), shape_mismatches(doc, ResultsDocument)
