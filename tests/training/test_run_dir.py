"""The run directory under failure (issue 19 item 8): a full disk ends the run with a clear error and keeps the
previous snapshot; leftovers of a killed write are removed on resume; stats.jsonl never repeats ticks after a
resume; status.json follows the run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from core.runs import latest_snapshot, list_snapshots, read_stats, read_status
from training.loop import TrainingStopped, train

from test_training_loop import assert_same, dataset, restore_determinism, tiny_options, weights  # noqa: F401


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:  # noqa: F811
    before = torch.are_deterministic_algorithms_enabled()
    try:
        return train(tiny_options(dataset, tmp_path_factory.mktemp("reference")), progress=False)
    finally:
        torch.use_deterministic_algorithms(before)


def test_a_full_disk_stops_with_a_clear_error_and_keeps_the_previous_snapshot(dataset, reference, tmp_path,
                                                                              monkeypatch):  # noqa: F811
    import core.tensor_files as tensor_files

    real = tensor_files._save
    snapshots = {"n": 0}

    def disk_fills_up(tensors, filename, metadata):
        snapshots["n"] += 1
        if snapshots["n"] == 2:  # the second snapshot: the disk is full half-way through
            with open(filename, "wb") as f:
                f.write(b"\0" * 1000)
            raise OSError(28, os.strerror(28), filename)
        real(tensors, filename, metadata)

    monkeypatch.setattr(tensor_files, "_save", disk_fills_up)
    with pytest.raises(TrainingStopped, match="No space left on device") as info:
        train(tiny_options(dataset, tmp_path), progress=False)
    monkeypatch.undo()
    run = next(tmp_path.iterdir())
    message = str(info.value)
    assert "network-snapshot-000000.016.safetensors" in message and "network-snapshot-000000.008" in message
    assert "--resume" in message and "MiB" in message
    assert message in (run / "error.txt").read_text()
    assert "ERROR: could not write snapshot" in (run / "log.txt").read_text()
    status = read_status(run)
    assert status.state == "failed" and "No space" in status.error
    assert [s.path.name for s in list_snapshots(run)] == ["network-snapshot-000000.008.safetensors"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # nothing of the failed write remains
    # Space freed: the run resumes from the kept snapshot and ends as the uninterrupted run.
    train(tiny_options(dataset, tmp_path, resume=str(run)), progress=False)
    assert_same(weights(reference / "network-snapshot-000000.016.safetensors"), weights(latest_snapshot(run)))
    assert not (run / "error.txt").exists() and read_status(run).state == "finished"
    assert "previous error (cleared)" in (run / "log.txt").read_text()


def test_resume_removes_leftovers_and_never_repeats_ticks(dataset, reference, tmp_path):  # noqa: F811
    run = train(tiny_options(dataset, tmp_path), progress=False)
    assert [r["kimg"] for r in read_stats(run)] == [0.004, 0.008, 0.012, 0.016]
    # What a SIGKILL during a write leaves: hidden temporaries and parts whose index was never written.
    leftovers = [run / ".network-snapshot-000000.020.safetensors.0123456789ab.tmp",
                 run / ".status.json.aaaaaaaaaaaa.tmp",
                 run / "network-snapshot-000000.020-00001-of-00002.safetensors"]
    for p in leftovers:
        p.write_bytes(b"partial")
        old = time.time() - 60
        os.utime(p, (old, old))
    # Continue from the older snapshot (as after a crash that lost the newer one): ticks after it are redone.
    (run / "network-snapshot-000000.016.safetensors").unlink()
    train(tiny_options(dataset, tmp_path, resume=str(run)), progress=False)
    assert not any(p.exists() for p in leftovers)
    log = (run / "log.txt").read_text()
    assert "removed 3 leftover file(s) of an interrupted write" in log
    assert "stats.jsonl: dropped 2 tick record(s) after 0.008 kimg" in log
    assert [r["kimg"] for r in read_stats(run)] == [0.004, 0.008, 0.012, 0.016]
    assert_same(weights(reference / "network-snapshot-000000.016.safetensors"), weights(latest_snapshot(run)))


def test_status_json_follows_the_run(dataset, tmp_path):  # noqa: F811
    run = train(tiny_options(dataset, tmp_path, kimg=0.008), progress=False)
    status = read_status(run)
    assert status.state == "finished" and status.kimg == 0.008 and status.total_kimg == 0.008
    assert status.last_snapshot == "network-snapshot-000000.008.safetensors" and status.pid == os.getpid()
    assert status.sec_per_kimg > 0 and status.error is None and status.started <= status.updated
    options = json.loads((run / "options.json").read_text())
    assert options["options"]["kimg"] == 0.008 and options["world_size"] == 1
