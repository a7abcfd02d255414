"""core/runs.py: the run-directory contract (names, snapshot finder, status.json, stats truncation, clean-up)."""

from __future__ import annotations

import json
import os
import time

import torch

from core.runs import (
    RunStatus,
    clean_run_dir,
    create_run_dir,
    find_run_by_launch,
    grid_path,
    is_run_dir,
    kimg_tag,
    latest_snapshot,
    list_snapshots,
    newest_grid,
    read_run_files,
    read_stats,
    read_status,
    request_stop,
    snapshot_files,
    snapshot_path,
    truncate_stats,
    write_status,
)
from core.tensor_files import write_tensor_file


def test_names_and_the_snapshot_finder(tmp_path):
    run = create_run_dir(tmp_path, "cpu128-heads 128")
    assert run.name == "00000-cpu128-heads_128" and create_run_dir(tmp_path, "x").name == "00001-x"
    assert is_run_dir(run) and not is_run_dir(tmp_path)
    assert kimg_tag(123_000) == "000123" and kimg_tag(8) == "000000.008"
    assert snapshot_path(run, 40_000).name == "network-snapshot-000040.safetensors"
    assert grid_path(run, 8).name == "fakes000000.008.png"
    assert latest_snapshot(run) is None and newest_grid(run) is None
    for name in ("network-snapshot-000040.pkl", "network-snapshot-000040.safetensors",  # same kimg: safetensors
                 "network-snapshot-000000.008.pkl", "network-snapshot-000120-00001-of-00002.safetensors",  # a part
                 "network-snapshot-000080.safetensors.index.json", ".network-snapshot-000100.safetensors.0123.tmp",
                 "fakes_init.png", "fakes000040.png", "fakes000000.008.png"):
        (run / name).write_bytes(b"")
    assert [(s.nimg, s.path.name) for s in list_snapshots(run)] == [
        (8, "network-snapshot-000000.008.pkl"), (40_000, "network-snapshot-000040.safetensors"),
        (80_000, "network-snapshot-000080.safetensors.index.json")]
    assert latest_snapshot(run).name == "network-snapshot-000080.safetensors.index.json"
    assert newest_grid(run).name == "fakes000040.png"


def test_snapshot_files_lists_an_index_with_its_parts(tmp_path):
    path = write_tensor_file(snapshot_path(tmp_path, 16), {"a": torch.zeros(20000)}, {}, max_part_bytes=32 << 10)
    files = snapshot_files(path)
    assert files[0] == path and len(files) == 4 and all(f.is_file() for f in files)
    assert snapshot_files(tmp_path / "x.safetensors") == [tmp_path / "x.safetensors"]


def test_status_json_round_trips_and_finds_the_launch(tmp_path):
    run = create_run_dir(tmp_path, "tiny")
    assert read_status(run) is None
    launch = tmp_path / "viewer-launch-1.json"
    status = RunStatus.new(total_kimg=2.0, world_size=1, launch_file=str(launch))
    write_status(run, status)
    assert read_status(run) == status and status.process_alive() is True
    assert find_run_by_launch(tmp_path, launch) == run and find_run_by_launch(tmp_path, tmp_path / "other") is None
    (run / "status.json").write_text('{"state": "exploded"}')
    assert read_status(run) is None  # unreadable statuses read as absent, never crash a reader
    (run / "status.json").write_text('{"state": "running", "future_field": 1}')
    assert read_status(run).state == "running"  # fields from newer code are ignored


def test_truncate_stats_keeps_the_ticks_up_to_the_snapshot(tmp_path):
    lines = [json.dumps({"kimg": k, "G_adv": 1.0}) for k in (0.004, 0.008, 0.012, 0.016)]
    (tmp_path / "stats.jsonl").write_text("\n".join(lines) + '\n{"kimg": 0.02, "G_')  # killed mid-line
    assert truncate_stats(tmp_path, 8) == 3
    assert [r["kimg"] for r in read_stats(tmp_path)] == [0.004, 0.008]
    assert truncate_stats(tmp_path, 8) == 0 and truncate_stats(tmp_path / "missing", 0) == 0


def test_clean_run_dir_removes_only_old_leftovers(tmp_path):
    write_tensor_file(snapshot_path(tmp_path, 8), {"a": torch.zeros(20000)}, {}, max_part_bytes=32 << 10)
    orphan = tmp_path / "network-snapshot-000000.016-00001-of-00003.safetensors"  # its index was never written
    stale = tmp_path / ".network-snapshot-000000.016.safetensors.0123456789ab.tmp"
    user = tmp_path / ".notes.tmp"  # not one of ours
    for p in (orphan, stale, user):
        p.write_bytes(b"x")
    old = time.time() - 60
    for p in (orphan, stale, user):
        os.utime(p, (old, old))
    fresh = tmp_path / ".fakes000010.png.aaaaaaaaaaaa.tmp"  # being written right now by someone
    fresh.write_bytes(b"x")
    removed = clean_run_dir(tmp_path, older_than=time.time() - 1)
    assert sorted(p.name for p in removed) == sorted([orphan.name, stale.name])
    assert user.exists() and fresh.exists() and latest_snapshot(tmp_path) is not None
    assert len(list(tmp_path.glob("network-snapshot-000000.008-*"))) == 3  # the complete snapshot's parts stay


def test_read_run_files_and_stop_request(tmp_path):
    run = create_run_dir(tmp_path, "tiny")
    (run / "options.json").write_text(json.dumps({"options": {"kimg": 3.0}}))
    (run / "log.txt").write_text("a\nb\n")
    request_stop(run, by="a test")
    files = read_run_files(run, log_lines=1)
    assert files.options == {"kimg": 3.0} and files.log_tail == "b" and files.stop_requested
    assert files.status is None and files.stats == [] and files.error == ""
