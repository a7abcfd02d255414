"""Graceful stopping (training/stopping.py): a STOP file, SIGTERM and --stop-after-minutes each leave a
complete run directory whose resume equals the uninterrupted run; stale STOP files are ignored."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from core.snapshots import load_snapshot
from training.loop import Trainer, TrainingProgress, train
from core.runs import latest_snapshot

from test_training_loop import assert_same, dataset, restore_determinism, tiny_options, weights  # noqa: F401


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:  # noqa: F811
    """The uninterrupted 4-step run (0.016 kimg) every stopped-and-resumed run must match."""
    before = torch.are_deterministic_algorithms_enabled()  # tiny_options switches it on; put it back
    try:
        return train(tiny_options(dataset, tmp_path_factory.mktemp("reference")), progress=False)
    finally:
        torch.use_deterministic_algorithms(before)


def _after_step(monkeypatch, at_step: int, action) -> None:
    """Run ``action()`` right after optimizer step ``at_step`` of the next training run."""
    original = Trainer.step

    def step(self, step, cur_nimg, reals):
        stats = original(self, step, cur_nimg, reals)
        if step == at_step:
            action()
        return stats

    monkeypatch.setattr(Trainer, "step", step)


def _log(run: Path) -> str:
    return (run / "log.txt").read_text()


def _progress(snapshot: Path) -> TrainingProgress:
    return TrainingProgress.from_dict(load_snapshot(snapshot).training["progress"])


def _resume_and_compare(dataset, outdir: Path, run: Path, reference: Path) -> None:  # noqa: F811
    resumed = train(tiny_options(dataset, outdir, resume=str(run)), progress=False)
    assert resumed == run
    assert_same(weights(reference / "network-snapshot-000000.016.safetensors"), weights(run / "network-snapshot-000000.016.safetensors"))
    assert "done: 0.016 kimg" in _log(run)


def test_stop_file_stops_at_the_next_step_and_resumes_exactly(dataset, reference, tmp_path, monkeypatch):  # noqa: F811
    outdir = tmp_path / "runs"
    _after_step(monkeypatch, 2, lambda: (next(outdir.iterdir()) / "STOP").touch())
    run = train(tiny_options(dataset, outdir), progress=False)
    monkeypatch.undo()
    assert not (run / "STOP").exists()  # removed once honoured
    assert "stopped on request (STOP file) at 0.012 kimg" in _log(run) and "done:" not in _log(run)
    assert latest_snapshot(run).name == "network-snapshot-000000.012.safetensors"
    assert _progress(latest_snapshot(run)) == TrainingProgress(12, 3, 12, 1)
    assert (run / "fakes000000.012.png").exists()
    ticks = [json.loads(line)["kimg"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert ticks == [0.004, 0.008, 0.012]
    _resume_and_compare(dataset, outdir, run, reference)


def test_sigterm_stops_cleanly_and_restores_the_handler(dataset, reference, tmp_path, monkeypatch):  # noqa: F811
    before = signal.getsignal(signal.SIGTERM)
    _after_step(monkeypatch, 0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    run = train(tiny_options(dataset, tmp_path), progress=False)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) is before
    assert "stopped on request (SIGTERM) at 0.004 kimg" in _log(run)
    assert latest_snapshot(run).name == "network-snapshot-000000.004.safetensors"
    _resume_and_compare(dataset, tmp_path, run, reference)


def test_stop_after_minutes_waits_for_a_tick_and_exits_zero(dataset, reference, tmp_path):  # noqa: F811
    from training.__main__ import main

    args = ["--data", str(dataset), "--outdir", str(tmp_path), "--preset", "tiny", "--resolution", "32", "--batch", "4",
            "--batch-gpu", "2", "--kimg", "0.016", "--tick-kimg", "0.008", "--snap-kimg", "0.008",
            "--image-snap-kimg", "0.008", "--num-views", "2", "--d-channel-base", "512", "--d-channel-max", "32",
            "--workers", "0", "--device", "cpu", "--r1-interval", "2", "--knn-k", "8", "--deterministic",
            "--stop-after-minutes", "0"]
    assert main(args) == 0
    run = next(tmp_path.iterdir())
    assert "stopped after the time limit (--stop-after-minutes 0) at 0.008 kimg" in _log(run)
    assert latest_snapshot(run).name == "network-snapshot-000000.008.safetensors"  # the first tick boundary, not step 1
    _resume_and_compare(dataset, tmp_path, run, reference)


def test_a_stale_stop_file_is_removed_not_honoured(dataset, tmp_path):  # noqa: F811
    run = train(tiny_options(dataset, tmp_path, kimg=0.004), progress=False)
    stale = run / "STOP"
    stale.touch()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    train(tiny_options(dataset, tmp_path, kimg=0.008, resume=str(run)), progress=False)
    assert not stale.exists()
    assert "removed a stale STOP file" in _log(run) and "done: 0.008 kimg" in _log(run)
    assert "stopped" not in _log(run)


def test_negative_time_limit_is_refused(dataset, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="stop_after_minutes"):
        tiny_options(dataset, tmp_path, stop_after_minutes=-1.0)


def _stop_rank(rank: int, world: int, store: str, data: str, out: str) -> None:
    from training.distributed import DistInfo

    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    opts = tiny_options(Path(data), Path(out), batch=4, batch_gpu=2, tick_kimg=0.008, stop_after_minutes=0.0,
                        deterministic=False)
    train(opts, info=DistInfo(rank, world, torch.device("cpu")), progress=False)  # shuts the group down


def test_two_ranks_stop_together_on_rank_zeros_decision(dataset, tmp_path):  # noqa: F811
    """Only rank 0 reads the clock; rank 1 must stop at the same step (else the run would hang or go on)."""
    import torch.multiprocessing as mp

    out = tmp_path / "runs"
    mp.spawn(_stop_rank, args=(2, str(tmp_path / "store"), str(dataset), str(out)), nprocs=2, join=True)
    run = next(out.iterdir())
    log = _log(run)
    assert "stopped after the time limit (--stop-after-minutes 0) at 0.008 kimg" in log
    assert "ranks in sync: G checksum" in log
    assert _progress(latest_snapshot(run)) == TrainingProgress(8, 2, 4, 2)
