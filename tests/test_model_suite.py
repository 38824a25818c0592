"""Suites across models: a suite file's [[models]] entries give one results document per model in
--out/<label>/ and a cross-model table of the headline metrics; bad entries fail before any work."""

from __future__ import annotations

import json

import pytest
import torch

from aebench.cli import main


@pytest.fixture(scope="module")
def second_model(tmp_path_factory, tiny_model):
    """Another tiny AE on 32x32 ORL faces, with N=8 latents."""
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    torch.set_num_threads(1)
    dataset = load_dataset("orl_faces", {"size": 32}, cache_dir=tiny_model[1])
    out = tmp_path_factory.mktemp("second-model") / "model.safetensors"
    train_and_save(dataset, out, latent_dim=8, model_options={"channels": (8, 16, 32)}, epochs=1, seed=1,
                   progress=False)
    return out


def test_a_suite_of_two_models_gives_a_document_each_and_a_cross_model_table(tmp_path, tiny_model, second_model):
    suite = tmp_path / "suite.toml"
    suite.write_text(f'''
n = 32
features = "fast"
metrics = ["fid", "latent_fd", "region_hits"]
figures = false
threads = 1
samplers = ["gaussian", "pca"]
dataset_options = {{ size = 32 }}

[[models]]
label = "n16"
checkpoint = "{tiny_model[0]}"

[[models]]
label = "n8"
checkpoint = "{second_model}"
''')
    out = tmp_path / "out"
    assert main(["run", "--config", str(suite), "--out", str(out), "--quiet", "--cache-dir", str(tiny_model[1])]) == 0
    docs = {label: json.loads((out / label / "results.json").read_text()) for label in ("n16", "n8")}
    assert docs["n16"]["model"]["latent_dim"] == 16 and docs["n8"]["model"]["latent_dim"] == 8
    assert all(d["status"] == "complete" and [r["name"] for r in d["samplers"]] == ["gaussian", "pca"]
               for d in docs.values())
    table = json.loads((out / "suite.json").read_text())
    assert table["models"] == ["n16", "n8"]
    for key in ("fid_recon", "latent_fd"):
        for sampler in ("gaussian", "pca"):
            assert table["headline"][key][sampler] == {m: {r["name"]: r for r in docs[m]["samplers"]}[sampler]
                                                       ["metrics"][key]["value"] for m in ("n16", "n8")}
    assert "hit_box" not in table["headline"] and "fid" not in table["headline"]  # diagnostics do not enter the cross-model table
    md = (out / "suite.md").read_text()
    assert "## fid_recon" in md and "| sampler | n16 | n8 |" in md
    # the Python API reads the same suite the same way (every entry resolved and checked before any run)
    from aebench.run.suite import suite_configs

    api = suite_configs(suite, {"out": str(out)})
    assert api.root == out and list(api.runs) == ["n16", "n8"]
    assert [c.out for c in api.runs.values()] == [docs[m]["config"]["out"] for m in ("n16", "n8")]
    assert [c.checkpoint for c in api.runs.values()] == [docs[m]["config"]["checkpoint"] for m in ("n16", "n8")]


def test_bad_models_entries_fail_before_any_work(tmp_path, tiny_model, capsys):
    suite = tmp_path / "suite.toml"
    for body, message in (('[[models]]\nlabel = "a"\ncheckpoit = "x"\n', "unknown key 'checkpoit'"),
                          ('[models]\ndataset = "orl_faces"\n', "list of tables"),
                          ('[[models]]\nlabel = "a"\n[[models]]\nlabel = "a"\n', "share the label 'a'"),
                          ('[[models]]\nlabel = "a/b"\n', "names a folder")):
        suite.write_text('samplers = ["gaussian"]\n' + body)
        assert main(["run", "--config", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) != 0
        assert message in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
