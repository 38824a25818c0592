"""The bad-input table: every wrong command line, suite file or input file a user has been seen to
try (or is likely to) gets exit code 2 (1 for an unexpected disk problem), one line on stderr that
names the problem and the fix, and leaves no output folder or file behind.

Add a row when a new kind of bad input turns up. Each row is (id, setup, argv, problem, fix, code):
`setup(tmp, ckpt)` writes the input files the case needs, `argv(tmp, ckpt)` is the command line;
`problem` and `fix` are substrings the one-line error must contain.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import aebench.plugins
from aebench.cli import main
from aebench.hookspecs import hookimpl
from aebench.results.schema import SCHEMA, SCHEMA_FAMILY

OUT = "out"


def run_args(tmp: Path, ckpt: Path, *extra: str, n: str = "32") -> list[str]:
    return ["run", "--checkpoint", str(ckpt), "--set", "dataset.size=32", "--features", "fast", "--n", n,
            "--quiet", "--out", str(tmp / OUT), *extra]


def suite_args(tmp: Path, ckpt: Path) -> list[str]:
    return ["run", "--config", str(tmp / "suite.toml"), "--checkpoint", str(ckpt), "--set", "dataset.size=32",
            "--features", "fast", "--quiet", "--out", str(tmp / OUT)]


def write_suite(body: str) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ckpt: Path) -> None:
        (tmp / "suite.toml").write_text(body)
    return setup


def write_latents(nan: bool = False) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ckpt: Path) -> None:
        rng = np.random.default_rng(0)
        train = rng.normal(size=(60, 16)).astype(np.float32)
        if nan:
            train[7, 3] = np.nan
        np.save(tmp / "train.npy", train)
        np.save(tmp / "heldout.npy", rng.normal(size=(20, 16)).astype(np.float32))
    return setup


def latent_args(tmp: Path, ckpt: Path) -> list[str]:
    return ["run", "--checkpoint", str(ckpt), "--train-latents", str(tmp / "train.npy"), "--heldout-latents",
            str(tmp / "heldout.npy"), "--quiet", "--out", str(tmp / OUT), "--sampler", "gaussian"]


def copy_checkpoint(edit: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, ckpt: Path) -> None:
        folder = tmp / "ckpt"
        folder.mkdir()
        shutil.copy(ckpt, folder / "model.safetensors")
        shutil.copy(ckpt.with_suffix(".json"), folder / "model.json")
        edit(folder)
    return setup


def sidecar_says_other_shape(folder: Path) -> None:
    """The sidecar describes a model with N=8 while the weights are those of N=16."""
    side = json.loads((folder / "model.json").read_text())
    side["architecture"]["config"]["latent_dim"] = 8
    (folder / "model.json").write_text(json.dumps(side))


def truncate_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def own_checkpoint_args(tmp: Path, ckpt: Path) -> list[str]:
    return run_args(tmp, tmp / "ckpt" / "model.safetensors", "--sampler", "gaussian")


def newer_results(tmp: Path, ckpt: Path) -> None:
    newer = f"{SCHEMA_FAMILY}{int(SCHEMA[len(SCHEMA_FAMILY):]) + 1}"
    doc = {"schema": newer, "status": "complete", "samplers": [], "references": []}
    for name in ("old.json", "new.json"):
        (tmp / name).write_text(json.dumps(doc))


class _BrokenPlugin:
    @hookimpl
    def register_samplers(self, register):
        raise RuntimeError("boom while registering")


def install_broken_plugin(tmp: Path, ckpt: Path) -> None:
    aebench.plugins.reset()
    aebench.plugins.get_plugin_manager().register(_BrokenPlugin(), name="broken-plugin")


def previous_complete_run(tmp: Path, ckpt: Path) -> None:
    (tmp / OUT / "figures").mkdir(parents=True)
    (tmp / OUT / "figures" / "old_grid.png").write_bytes(b"png")
    (tmp / OUT / "results.json").write_text(json.dumps({"schema": SCHEMA, "status": "complete"}))


def a_file_where_a_folder_goes(tmp: Path, ckpt: Path) -> None:
    (tmp / "blocker").write_text("a file, not a folder")


@dataclass
class Case:
    id: str
    argv: Callable[[Path, Path], list[str]]
    problem: str
    fix: str
    setup: Callable[[Path, Path], None] | None = None
    code: int = 2


CASES = [
    # -- options that depend on the model or the data (issue 12.5, 13.5) -----------------------------
    Case("axis beyond N", lambda t, c: run_args(t, c, "--sampler", "plane_paths", "--set", "plane_paths.axes=0,99999"),
         "axis 99999 is out of range for this model's N=16", "use axes in 0..15"),
    Case("README's old axes example on a small model",
         lambda t, c: run_args(t, c, "--sampler", "plane_paths", "--set", "plane_paths.axes=151,195"),
         "axis 151 is out of range", "drop axes"),
    Case("line endpoint beyond the training set",
         lambda t, c: run_args(t, c, "--sampler", "line", "--set", "line.end=train:100000"),
         "'train:100000' is out of range: there are 320 training latents", "choose an index below 320"),
    Case("pca.k beyond N", lambda t, c: run_args(t, c, "--sampler", "pca", "--set", "pca.k=100"),
         "k=100 exceeds this model's latent dimension N=16", "--set pca.k=16"),
    Case("labelled suite entry with an axis beyond N",
         lambda t, c: suite_args(t, c),
         "sampler 'wide' (plane_paths): axis 40 is out of range", "use axes in 0..15",
         write_suite('[[samplers]]\nname = "plane_paths"\nlabel = "wide"\noptions = { axes = [0, 40] }\n')),
    Case("sample count beyond memory", lambda t, c: run_args(t, c, "--sampler", "gaussian", n="1000000000"),
         "--n 1000000000 needs about", "or less"),
    Case("list in brackets", lambda t, c: run_args(t, c, "--sampler", "plane_paths", "--set", "plane_paths.angles=[0,45]"),
         "without brackets", "--set plane_paths.angles=0,45"),
    Case("bad list item", lambda t, c: run_args(t, c, "--sampler", "plane_paths", "--set", "plane_paths.angles=0,4x5"),
         "'4x5' is not a number", "comma-separated"),
    Case("zero seeds", lambda t, c: run_args(t, c, "--sampler", "gaussian", "--seeds", "0"),
         "seeds = 0 (--seeds 0)", "a count of at least 1"),
    # -- names --------------------------------------------------------------------------------------------
    Case("unknown data set", lambda t, c: run_args(t, c, "--dataset", "orl_face", "--sampler", "gaussian"),
         "Unknown dataset 'orl_face'", "Did you mean 'orl_faces'?"),
    Case("unknown sampler", lambda t, c: run_args(t, c, "--sampler", "gausian"),
         "Unknown sampler 'gausian'", "Did you mean 'gaussian'?"),
    Case("unknown region", lambda t, c: run_args(t, c, "--sampler", "gaussian", "--regions", "elipsoid"),
         "Unknown region 'elipsoid'", "Did you mean 'ellipsoid'?"),
    Case("unknown metric", lambda t, c: run_args(t, c, "--sampler", "gaussian", "--metrics", "fidd"),
         "Unknown metric 'fidd'", "Did you mean 'fid'?"),
    # -- input files -----------------------------------------------------------------------------------
    Case("latent files that do not exist, no model",
         lambda t, c: ["run", "--train-latents", str(t / "nope.npy"), "--heldout-latents", str(t / "nope2.npy"),
                       "--quiet", "--out", str(t / OUT)],
         "nope.npy does not exist", "check the --train-latents path"),
    Case("NaN in a latent file", latent_args, "has NaN or Inf in 1 of 60 rows", "remove or re-encode them",
         write_latents(nan=True)),
    Case("checkpoint whose weights and sidecar disagree in shape", own_checkpoint_args,
         "does not match its architecture 'conv_ae'", "retrain", copy_checkpoint(sidecar_says_other_shape)),
    Case("corrupt (truncated) checkpoint", own_checkpoint_args, "corrupt or truncated", "retrain",
         copy_checkpoint(truncate_weights)),
    Case("checkpoint that does not exist", lambda t, c: run_args(t, t / "missing.safetensors", "--sampler", "gaussian"),
         "missing.safetensors does not exist", "check the path"),
    Case("results from a newer schema", lambda t, c: ["compare", str(t / "old.json"), str(t / "new.json")],
         f"{SCHEMA_FAMILY}{int(SCHEMA[len(SCHEMA_FAMILY):]) + 1}", SCHEMA, newer_results),
    Case("a plugin that raises while registering", lambda t, c: run_args(t, c, "--sampler", "gaussian"),
         "Plugin 'broken-plugin' failed in register_samplers: RuntimeError: boom while registering",
         "Fix or uninstall that plugin", install_broken_plugin),
    # -- suite files (issue 13.2) ----------------------------------------------------------------------
    Case("[samplers] table instead of [[samplers]]", suite_args,
         "[samplers] is a single table", "write [[samplers]] (double brackets)",
         write_suite('[samplers]\nname = "gmm"\noptions = { k = 3 }\n')),
    Case("misspelt key in a [[samplers]] entry", suite_args,
         "[[samplers]] entry 2 (gmm): unknown key 'optons'", "Did you mean 'options'?",
         write_suite('[[samplers]]\nname = "gaussian"\n[[samplers]]\nname = "gmm"\noptons = { k = 3 }\n')),
    Case("run setting written inside a [[samplers]] entry", suite_args,
         "[[samplers]] entry 1 (gmm): 'n' is a run setting", "move `n = 40` above the first [[samplers]]",
         write_suite('[[samplers]]\nname = "gmm"\nn = 40\n')),
    Case("sampler option written beside name instead of under options", suite_args,
         "'k' is an option of gmm", "options = { k = 3 }", write_suite('[[samplers]]\nname = "gmm"\nk = 3\n')),
    Case("entry key at the top level", suite_args, "'label' at the top level", "inside a [[samplers]] entry",
         write_suite('label = "x"\n[[samplers]]\nname = "gmm"\n')),
    Case("sampler listed twice under one label", suite_args,
         "entries 1 and 2 both run 'gmm' (a sampler listed twice under one label)", "give one of them its own label",
         write_suite('[[samplers]]\nname = "gmm"\n[[samplers]]\nname = "gmm"\noptions = { k = 3 }\n')),
    Case("two entries with the same label", suite_args, "are both labelled 'mine'", 'label = "gmm_2"',
         write_suite('[[samplers]]\nname = "gaussian"\nlabel = "mine"\n[[samplers]]\nname = "gmm"\nlabel = "mine"\n')),
    Case("seeds = 0", suite_args, "seeds = 0: give a count of at least 1", "seeds = [0, 5]",
         write_suite('seeds = 0\n[[samplers]]\nname = "gmm"\n')),
    Case("seed with an explicit list", suite_args, "seed = 2 goes with a count", "drop seed",
         write_suite('seed = 2\nseeds = [0, 1]\n[[samplers]]\nname = "gmm"\n')),
    Case("misspelt region in region_options", suite_args, "region_options.knnn: 'knnn' is not a region",
         "Did you mean 'knn'?", write_suite('[region_options.knnn]\nk = 5\n[[samplers]]\nname = "gmm"\n')),
    Case("misspelt option inside options", suite_args, "Unknown option 'gmm.kk'", "Did you mean 'k'?",
         write_suite('[[samplers]]\nname = "gmm"\noptions = { kk = 3 }\n')),
    # -- outputs (issue 13.3) ----------------------------------------------------------------------------
    Case("complete earlier run in --out", lambda t, c: run_args(t, c, "--sampler", "gaussian"),
         "holds a complete earlier run", "pass --force to replace it", previous_complete_run),
    Case("--out below a file", lambda t, c: run_args(t, c, "--sampler", "gaussian", "--out", str(t / "blocker" / "out")),
         "Cannot write to --out folder", "choose another folder", a_file_where_a_folder_goes),
    Case("train --out below a file",
         lambda t, c: ["train", "--set", "dataset.size=16", "--epochs", "1", "--out", str(t / "blocker" / "m.safetensors")],
         "Cannot write to the folder of --out checkpoint", "choose another folder", a_file_where_a_folder_goes),
    Case("stats --out below a file",
         lambda t, c: ["stats", "--checkpoint", str(c), "--set", "dataset.size=32", "--out", str(t / "blocker" / "x")],
         "Cannot write to --out folder", "choose another folder", a_file_where_a_folder_goes),
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, tiny_orl_checkpoint, capsys):
    if case.setup is not None:
        case.setup(tmp_path, tiny_orl_checkpoint)
    before = _files(tmp_path)
    rc = main(case.argv(tmp_path, tiny_orl_checkpoint))
    err = capsys.readouterr().err.strip()
    assert rc == case.code, err
    assert len(err.splitlines()) == 1 and err.startswith("Error:"), err
    assert case.problem in err, err
    assert case.fix in err, err
    assert _files(tmp_path) == before, "the failed command left files behind"


def test_every_listed_issue_case_is_in_the_table():
    """The cases the issues name, by id, so none is dropped by accident."""
    ids = {c.id for c in CASES}
    for wanted in ("axis beyond N", "line endpoint beyond the training set", "pca.k beyond N",
                   "sample count beyond memory", "list in brackets", "latent files that do not exist, no model",
                   "results from a newer schema", "sampler listed twice under one label",
                   "checkpoint whose weights and sidecar disagree in shape", "NaN in a latent file",
                   "a plugin that raises while registering", "corrupt (truncated) checkpoint",
                   "[samplers] table instead of [[samplers]]", "misspelt key in a [[samplers]] entry",
                   "run setting written inside a [[samplers]] entry", "unknown data set", "unknown sampler",
                   "unknown region", "unknown metric"):
        assert wanted in ids, wanted


def test_memory_estimate_and_suggestion():
    from aebench.run.preflight import ResourceError, bytes_per_sample, check_memory

    per = bytes_per_sample(64, (1, 64, 64), 2048)
    assert per == 16 * 64 + 64 * 64 + 4 * 2048
    check_memory(1000, 64, (1, 64, 64), 2048, available=per * 1000)  # fits exactly: fine
    with pytest.raises(ResourceError, match=r"--n 1001 needs about .* use --n 500 or less"):
        check_memory(1001, 64, (1, 64, 64), 2048, available=per * 1000)
