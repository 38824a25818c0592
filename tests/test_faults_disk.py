"""A disk that fills while a run writes its results, its caches or its figures: the run stops with one
line that says the disk is full and what to do, exit status 1; the last results.json written stays
intact (only a temporary file was being written) and `--resume` afterwards gives the same document as
a run that was never stopped. The full disk is simulated where the real one would strike: Python's
file write, safetensors' Rust writer (which reports ENOSPC as text in its own exception) and
matplotlib's savefig."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from test_cells import numbers_only

from aebench.cli import main
from aebench.results.schema import check_results

SAMPLERS = "gaussian,uniform,pca"


def _args(checkpoint, out, cache, *extra):
    return ["run", "--checkpoint", str(checkpoint), "--set", "dataset.size=32", "--features", "fast", "--n", "32",
            "--sampler", SAMPLERS, "--metrics", "fid,region_hits,latent_fd", "--quiet", "--threads", "1",
            "--out", str(out), "--cache-dir", str(cache), *extra]


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines  # one line, no traceback
    return lines[0]


def _no_temporary_files(*folders: Path) -> None:
    for folder in folders:
        assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], folder


def _resume_equals_whole(args, whole_out: Path, out: Path) -> None:
    assert main([*args, "--resume"]) == 0
    resumed = json.loads((out / "results.json").read_text())
    whole = json.loads((whole_out / "results.json").read_text())
    assert resumed["status"] == "complete" and resumed["plan"]["cells_reused"] >= 1
    for doc in (resumed, whole):
        for row in doc["samplers"]:
            row.pop("figures", None)
        for cell in doc["cells"]:
            cell.pop("figures", None)
    assert numbers_only(resumed) == numbers_only(whole)


def test_a_full_disk_while_writing_results_keeps_the_last_document_and_resume_finishes(
        tmp_path, tiny_model, monkeypatch, capsys):
    checkpoint, cache = tiny_model
    assert main(_args(checkpoint, tmp_path / "whole", cache, "--no-figures")) == 0
    out = tmp_path / "out"
    args = _args(checkpoint, out, cache, "--no-figures")
    real_write = Path.write_text

    def write_text(self, data, *a, **k):  # the disk fills as the second sampler's cell is written
        if self.name.startswith(".results.json.") and any(c["sampler"] == "uniform" for c in json.loads(data).get("cells", [])):
            raise _enospc()
        return real_write(self, data, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    capsys.readouterr()
    assert main(args) == 1
    line = _error_line(capsys)
    assert line.startswith("Error: The disk is full: no space left to write results.json in ") and str(out) in line
    assert "Free space on that disk" in line and "--resume" in line
    doc = check_results(json.loads((out / "results.json").read_text()))  # the last good document, intact
    assert doc["status"] == "running" and [c["sampler"] for c in doc["cells"]] == ["gaussian"]
    _no_temporary_files(out)
    monkeypatch.setattr(Path, "write_text", real_write)
    _resume_equals_whole(args, tmp_path / "whole", out)


def test_a_full_disk_while_writing_a_cache_entry_stops_cleanly(tmp_path, tiny_orl_checkpoint, monkeypatch, capsys):
    """safetensors reports ENOSPC as a SafetensorError whose text carries the OS error: it must read as a
    full disk too (before, it escaped as a traceback)."""
    import safetensors.torch
    from safetensors import SafetensorError

    cache = tmp_path / "cache"
    real_save = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        if Path(filename).parent.name == "features":
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    args = _args(tiny_orl_checkpoint, tmp_path / "out", cache, "--no-figures")
    capsys.readouterr()
    assert main(args) == 1
    line = _error_line(capsys)
    assert line.startswith("Error: The disk is full: no space left to write ") and str(cache / "features") in line
    assert not (tmp_path / "out").exists()  # stopped in the setup: no output folder left behind
    assert not list((cache / "features").glob("*.safetensors"))  # and no cache entry, whole or torn
    _no_temporary_files(cache)
    monkeypatch.setattr(safetensors.torch, "save_file", real_save)
    assert main(args) == 0  # space freed: the same command runs


def test_a_full_disk_while_drawing_figures_keeps_the_finished_cells(tmp_path, tiny_model, monkeypatch, capsys):
    from PIL import Image

    checkpoint, cache = tiny_model
    assert main(_args(checkpoint, tmp_path / "whole", cache)) == 0
    out = tmp_path / "out"
    args = _args(checkpoint, out, cache)
    real_save = Image.Image.save

    def save(self, fp, *a, **k):  # the disk fills on the second sampler's first picture
        if Path(str(fp)).name.startswith(".uniform_"):
            raise _enospc()
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", save)
    capsys.readouterr()
    assert main(args) == 1
    line = _error_line(capsys)
    assert line.startswith("Error: The disk is full: no space left to write uniform_grid.png in ")
    assert str(out / "figures") in line
    doc = check_results(json.loads((out / "results.json").read_text()))
    assert doc["status"] == "running" and [c["sampler"] for c in doc["cells"]] == ["gaussian"]
    _no_temporary_files(out)
    monkeypatch.setattr(Image.Image, "save", real_save)
    _resume_equals_whole(args, tmp_path / "whole", out)


@pytest.mark.parametrize("error", [_enospc(), OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)),
                                   RuntimeError("I/O error: No space left on device (os error 28)")])
def test_every_spelling_of_a_full_disk_is_recognised(error):
    from aebench.errors import is_disk_full

    assert is_disk_full(error)
    try:
        try:
            raise error
        except Exception as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(ValueError("x"))


def test_a_full_disk_while_caching_decoded_images_is_an_error_not_a_crash(tmp_path, monkeypatch):
    """The image cache is a memory-mapped file: on a full disk, writing into the pages of a sparse file that
    cannot grow kills the process with SIGBUS (seen on a 64 kB tmpfs). The file is allocated in full first,
    so the full disk is reported there, as an error."""
    from test_data import make_png_folder

    from aebench.data.image_folder import ImageFolder
    from aebench.errors import DiskFullError

    folder = make_png_folder(tmp_path / "pngs")

    def no_space(fd, offset, length):
        raise _enospc()

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(DiskFullError, match=r"The disk is full: no space left to write \w+\.npy in .*images"):
        ImageFolder(path=str(folder), size=8).load(tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache" / "images").iterdir() if p.suffix != ".lock"]


def test_a_full_disk_while_saving_a_trained_model_still_rescues_it(tmp_path, monkeypatch):
    """The checkpoint's real writer (safetensors) hits the full disk: the training is not lost, the model
    goes to a temporary folder and the one-line error says so (before, safetensors' own exception escaped
    the rescue, which caught only OSError)."""
    import shutil

    from safetensors import SafetensorError

    import aebench.models.checkpoint as checkpoint
    from aebench.dataset import load_dataset
    from aebench.errors import CheckpointError
    from aebench.models.training import train_and_save

    real_save = checkpoint.save_file
    calls = []

    def full_disk_once(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 1:
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_disk_once)
    dataset = load_dataset("orl_faces", {"size": 16}, cache_dir=tmp_path / "cache")
    out = tmp_path / "m" / "model.safetensors"
    with pytest.raises(CheckpointError, match=r"\(the disk is full\); the trained model was saved to ") as info:
        train_and_save(dataset, out, latent_dim=4, model_options={"channels": (8, 16)}, epochs=1, progress=False)
    rescued = Path(str(info.value).split("was saved to ")[1].split(" instead")[0])
    try:
        module, _ = checkpoint.load_checkpoint(rescued / "model.safetensors")
        assert module.latent_dim == 4 and not out.exists()
        _no_temporary_files(out.parent)
    finally:
        shutil.rmtree(rescued)
