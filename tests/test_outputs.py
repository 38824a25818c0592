"""Nothing a user made is lost: outputs are checked before any work, a complete run is never replaced
without --force, old figures never mix with new ones, files get the umask's permissions, a failed
setup leaves no folder behind, and a trained model that cannot be saved where asked is rescued."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from aebench.cli import main
from aebench.errors import CheckpointError
from aebench.infra.io import atomic_path, check_writable_dir, output_folder, write_text_atomic
from aebench.results.schema import SCHEMA

RUN = ["--set", "dataset.size=32", "--features", "fast", "--n", "24", "--quiet", "--metrics", "region_hits,fid"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _run(ckpt: Path, out: Path, *extra: str) -> int:
    return main(["run", "--checkpoint", str(ckpt), *RUN, "--out", str(out), *extra])


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert _mode(write_text_atomic(tmp_path / "a.txt", "x")) == mode  # mkstemp alone gives 0600
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"y")
    assert _mode(tmp_path / "b.bin") == mode
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_writes_files_others_can_read(tmp_path, tiny_orl_checkpoint, umask):
    umask(0o022)
    out = tmp_path / "out"
    assert _run(tiny_orl_checkpoint, out, "--sampler", "origin_line") == 0
    files = [out / "results.json", out / "report.md", out / "report.html", *(out / "figures").glob("*.png")]
    assert len(files) > 4
    assert {_mode(f) for f in files} == {0o644}


def test_a_complete_run_is_never_replaced_without_force(tmp_path, tiny_orl_checkpoint, capsys):
    out = tmp_path / "out"
    assert _run(tiny_orl_checkpoint, out, "--sampler", "origin_line") == 0
    first = (out / "results.json").read_bytes()
    old_figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "origin_line_grid.png" in old_figures
    (out / "figures" / "stale_from_an_older_run.png").write_bytes(b"old")
    capsys.readouterr()

    assert _run(tiny_orl_checkpoint, out, "--sampler", "gaussian") == 2
    err = capsys.readouterr().err.strip()
    assert "holds a complete earlier run; pass --force" in err and len(err.splitlines()) == 1
    assert (out / "results.json").read_bytes() == first  # the earlier results are untouched

    # --force with a setup that fails keeps the earlier run as it was
    assert _run(tiny_orl_checkpoint, out, "--sampler", "pca", "--set", "pca.k=99", "--force") == 2
    assert (out / "results.json").read_bytes() == first
    assert (out / "figures" / "stale_from_an_older_run.png").exists()

    assert _run(tiny_orl_checkpoint, out, "--sampler", "gaussian", "--force") == 0
    doc = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in doc["samplers"]] == ["gaussian"]
    figures = sorted(p.name for p in (out / "figures").iterdir() if p.name not in ("explorer", "explorer.json"))
    assert figures and all(name.startswith("gaussian_") for name in figures)  # no old picture left (but the run's explorer)


def test_an_unfinished_run_may_be_replaced(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "crashed_grid.png").write_bytes(b"old")
    (out / "results.json").write_text(json.dumps({"schema": SCHEMA, "status": "running"}))
    assert _run(tiny_orl_checkpoint, out, "--sampler", "gaussian") == 0
    assert json.loads((out / "results.json").read_text())["status"] == "complete"
    assert not (out / "figures" / "crashed_grid.png").exists()


def test_a_folder_that_is_not_a_run_keeps_its_own_files(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "mine"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "my_plot.png").write_bytes(b"mine")
    (out / "notes.md").write_text("mine")
    assert _run(tiny_orl_checkpoint, out, "--sampler", "gaussian") == 0
    assert (out / "figures" / "my_plot.png").read_bytes() == b"mine" and (out / "notes.md").exists()


def test_a_failed_setup_leaves_no_folder(tmp_path, tiny_orl_checkpoint):
    out = tmp_path / "new" / "deeper" / "out"
    assert _run(tiny_orl_checkpoint, out, "--sampler", "plane_paths", "--set", "plane_paths.axes=0,99") == 2
    assert not (tmp_path / "new").exists()


def test_output_folder_removes_only_the_empty_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with output_folder(tmp_path / "kept" / "a" / "b"):
            raise RuntimeError("setup failed")
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "a").exists()
    with pytest.raises(RuntimeError):
        with output_folder(tmp_path / "kept" / "c") as folder:
            (folder / "results.json").write_text("{}")
            raise RuntimeError("a sampler failed after the first write")
    assert (tmp_path / "kept" / "c" / "results.json").exists()


def test_check_writable_dir_leaves_nothing_behind(tmp_path):
    check_writable_dir(tmp_path / "x" / "y")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(IS_ROOT, reason="root writes through read-only permission bits")
@pytest.mark.parametrize("command", ["run", "train", "stats"])
def test_read_only_out_fails_before_any_work(tmp_path, tiny_orl_checkpoint, capsys, monkeypatch, command):
    import aebench.caches.latents
    import aebench.models.training

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(aebench.models.training, "train_model", no_work)
    monkeypatch.setattr(aebench.caches.latents, "encode_images", no_work, raising=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        argv = {
            "run": ["run", "--checkpoint", str(tiny_orl_checkpoint), *RUN, "--sampler", "gaussian", "--out", str(locked / "o")],
            "train": ["train", "--set", "dataset.size=16", "--epochs", "1", "--out", str(locked / "m.safetensors")],
            "stats": ["stats", "--checkpoint", str(tiny_orl_checkpoint), "--set", "dataset.size=32", "--out", str(locked / "s")],
        }[command]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("Error: Cannot write to") and len(err.splitlines()) == 1
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_train_checks_its_output_before_training(tmp_path, monkeypatch, capsys):
    import aebench.models.training

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking where the model goes")

    monkeypatch.setattr(aebench.models.training, "train_model", no_training)
    (tmp_path / "file").write_text("not a folder")
    rc = main(["train", "--set", "dataset.size=16", "--out", str(tmp_path / "file" / "model.safetensors")])
    assert rc == 2 and "Cannot write to the folder of --out checkpoint" in capsys.readouterr().err


def test_a_model_that_cannot_be_saved_is_rescued(tmp_path, monkeypatch):
    """A disk that fills up during the save must not cost the training: the model goes to a temporary
    folder and the error says where."""
    import aebench.models.checkpoint as checkpoint
    from aebench.dataset import load_dataset
    from aebench.models.training import train_and_save

    real_save = checkpoint.save_checkpoint
    calls = []

    def full_disk_once(path, module, sidecar):
        calls.append(Path(path))
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, module, sidecar)

    monkeypatch.setattr(checkpoint, "save_checkpoint", full_disk_once)
    dataset = load_dataset("orl_faces", {"size": 16})
    with pytest.raises(CheckpointError, match="No space left on device.*the trained model was saved to") as info:
        train_and_save(dataset, tmp_path / "m" / "model.safetensors", latent_dim=4,
                       model_options={"channels": (8, 16)}, epochs=1, progress=False)
    rescued = calls[1].parent
    assert str(rescued) in str(info.value)
    module, sidecar = checkpoint.load_checkpoint(rescued / "model.safetensors")
    assert module.latent_dim == 4 and sidecar["dataset"]["name"] == "orl_faces"
    import shutil

    shutil.rmtree(rescued)


def test_an_unexpected_disk_error_is_one_line(tmp_path, monkeypatch, capsys):
    import aebench.commands.samplers as samplers_command

    def disk_error(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", "/some/file")

    monkeypatch.setattr(samplers_command, "sampler_table", disk_error)
    assert main(["samplers"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("Error: cannot read or write /some/file (Input/output error); check the path, free space "
                   "and permissions.")
