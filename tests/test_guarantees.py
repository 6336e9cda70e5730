"""Guarantees pinned so that removing one fails a test (the mutation audit of #22 found these passing without)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch


def test_an_output_never_appears_under_its_final_name_before_it_is_complete(tmp_path, monkeypatch):
    """atomic_write_bytes writes a temporary beside the target, flushes it to disk, then renames:
    the final name is never opened for writing, and it appears only by the rename, complete."""
    from archivecolor import files

    target = tmp_path / "scan.tif"
    events = []
    real_open, real_replace, real_fsync = open, os.replace, os.fsync

    def watched_open(path, mode="r", *args, **kwargs):
        if "w" in mode or "a" in mode:
            events.append(("open", Path(path)))
            assert Path(path) != target, "the final name was opened for writing"
        return real_open(path, mode, *args, **kwargs)

    def watched_replace(src, dst):
        events.append(("replace", Path(src), Path(dst), Path(src).read_bytes()))
        return real_replace(src, dst)

    monkeypatch.setattr("builtins.open", watched_open)
    monkeypatch.setattr(files.os, "replace", watched_replace)
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(("fsync",)) or real_fsync(fd))
    files.atomic_write_bytes(target, b"complete picture")
    kinds = [e[0] for e in events]
    assert kinds == ["open", "fsync", "replace"]
    _, src, dst, content = events[2]
    assert dst == target and src.parent == target.parent and src.name.startswith(".scan.tif.") and content == b"complete picture"
    assert target.read_bytes() == b"complete picture" and not list(tmp_path.glob(".*.part"))


class _Evil:
    """A pickle that would create a file when unpickled."""

    marker: Path = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_weights_and_checkpoints_never_unpickle(tmp_path):
    """A loader that ran torch.load(weights_only=False) first and refused afterwards would pass a test
    that only checks the refusal: here the pickle would create a file, and the file must never exist."""
    from archivecolor.weights import WeightsError, load_generator

    _Evil.marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.safetensors"
    torch.save({"x": _Evil()}, evil)
    assert not _Evil.marker.exists()
    with pytest.raises(WeightsError):
        load_generator(evil)
    assert not _Evil.marker.exists()
    with pytest.raises(Exception):  # the checkpoint loader train --resume uses
        torch.load(evil, map_location="cpu", weights_only=True)
    assert not _Evil.marker.exists()


def test_train_resume_reads_its_checkpoint_without_running_a_pickle(tmp_path, colour_folder):
    from dataclasses import replace

    from archivecolor.train import TrainConfig, train

    config = TrainConfig(epochs=1, batch_size=4, crop=32, width=4, depth=4, d_width=4, workers=0, samples=2, val_fraction=0.25)
    run = tmp_path / "run"
    train(colour_folder, run, config, show_progress=False)
    _Evil.marker = tmp_path / "code-ran"
    torch.save({"generator": _Evil()}, run / "checkpoint.pt")
    with pytest.raises(ValueError, match="checkpoint.pt: not a checkpoint archivecolor train wrote") as info:
        train(colour_folder, run, replace(config, epochs=2), resume=True, show_progress=False)
    assert "\n" not in str(info.value)
    assert not _Evil.marker.exists()
    torch.save({"generator": {}}, run / "checkpoint.pt")  # tensors only, but not ours
    with pytest.raises(ValueError, match="no 'discriminator'"):
        train(colour_folder, run, replace(config, epochs=2), resume=True, show_progress=False)


def test_the_ab_scale_is_pinned():
    """Every shipped model was trained with ab/110: changing it would colour every picture wrong, silently."""
    from archivecolor.lab import AB_SCALE, L_MAX, denormalize_ab, normalize_ab, normalize_l

    assert AB_SCALE == 110.0 and L_MAX == 100.0
    ab = np.array([[110.0, -55.0]], np.float32)
    assert np.allclose(normalize_ab(ab), [[1.0, -0.5]]) and np.allclose(denormalize_ab(normalize_ab(ab)), ab)
    assert np.allclose(normalize_l(np.array([0.0, 50.0, 100.0], np.float32)), [-1.0, 0.0, 1.0])
