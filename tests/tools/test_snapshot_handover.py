"""tools/snapshot_handover.py: a sharded snapshot split for the device tool's limits and put back together."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from core.tensor_file_reader import open_tensor_file
from core.tensor_files import write_tensor_file

_spec = importlib.util.spec_from_file_location("snapshot_handover", Path(__file__).parents[2] / "tools" /
                                               "snapshot_handover.py")
handover = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = handover  # dataclasses look their module up there
_spec.loader.exec_module(handover)


@pytest.fixture
def sharded(tmp_path):
    """A sharded tensor file of ~200 KiB in parts of at most 40 KiB, and its tensors."""
    g = torch.Generator().manual_seed(0)
    tensors = {f"t{i}": torch.randn(3000 + 500 * i, generator=g) for i in range(8)}
    (tmp_path / "src").mkdir()
    index = write_tensor_file(tmp_path / "src" / "snap.safetensors", tensors, {"kimg": 1.5},
                              max_part_bytes=40 << 10)
    assert index.name.endswith(".index.json")
    return index, tensors


def read_all(index: Path) -> dict[str, torch.Tensor]:
    return open_tensor_file(index).read()


def test_groups_respect_file_and_byte_limits():
    parts = [handover.Part(f"p{i}", size, None) for i, size in enumerate([5, 5, 5, 9, 1, 1, 1, 1, 1])]
    gs = handover.groups(parts, max_files=3, max_bytes=12)
    assert [[p.name for p in g] for g in gs] == [["p0", "p1"], ["p2"], ["p3", "p4", "p5"], ["p6", "p7", "p8"]]
    with pytest.raises(ValueError, match="write smaller parts"):
        handover.groups(parts, max_files=3, max_bytes=8)


def test_out_stage_gather_round_trip(sharded, tmp_path):
    index, tensors = sharded
    n_files = len(handover.snapshot_parts(index))
    assert n_files >= 6
    copied, calls = handover.out_call(index, tmp_path / "out0", 0)  # all fits one call under the real limits
    assert (copied, calls) == (n_files, 1)
    with pytest.raises(ValueError, match="out of range"):
        handover.out_call(index, tmp_path / "out1", 1)
    back = handover.gather(tmp_path / "here", [tmp_path / "out0"])
    folders = handover.stage(back, tmp_path / "in", max_mib=60 / 1024)  # 60 KiB carry folders
    assert len(folders) >= 3 and all(sum(f.stat().st_size for f in d.iterdir()) <= 60 << 10 for d in folders)
    again = handover.gather(tmp_path / "there", folders)
    got = read_all(again)
    assert set(got) == set(tensors) and all(torch.equal(got[k], tensors[k]) for k in tensors)


def test_gather_reports_missing_and_changed_parts(sharded, tmp_path):
    index, _ = sharded
    folders = handover.stage(index, tmp_path / "in", max_mib=60 / 1024)
    victim = next(p for p in folders[-1].iterdir())
    keep = victim.read_bytes()
    victim.unlink()
    with pytest.raises(ValueError, match=victim.name):
        handover.gather(tmp_path / "a", folders)
    victim.write_bytes(keep[:-1] + bytes([keep[-1] ^ 1]))  # same size, one bit changed
    with pytest.raises(ValueError, match="SHA-256 differs"):
        handover.gather(tmp_path / "b", folders)


def test_never_overwrites_a_different_file(sharded, tmp_path):
    index, _ = sharded
    first = handover.snapshot_parts(index)[1].name
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / first).write_bytes(b"a user's file")
    assert handover.main(["out", str(index), str(tmp_path / "out"), "--call", "0"]) == 1
    assert (tmp_path / "out" / first).read_bytes() == b"a user's file"


def test_a_single_file_snapshot_travels_whole(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "big").mkdir()
    path = write_tensor_file(tmp_path / "src" / "one.safetensors", {"x": torch.arange(4.0)}, {})
    (part,) = handover.snapshot_parts(path)
    assert part.name == "one.safetensors" and part.size == path.stat().st_size and len(part.sha256) == 64
    assert handover.out_call(path, tmp_path / "out", 0) == (1, 1)
    back = handover.gather(tmp_path / "here", [tmp_path / "out"])
    assert torch.equal(read_all(back)["x"], torch.arange(4.0))
    big = write_tensor_file(tmp_path / "big" / "two.safetensors", {"x": torch.zeros(5 << 20)}, {})  # 20 MiB
    with pytest.raises(ValueError, match="write smaller parts"):
        handover.out_call(big, tmp_path / "out2", 0)
    with pytest.raises(ValueError, match="not a readable snapshot"):
        handover.snapshot_parts(tmp_path / "absent.safetensors.index.json")


def test_a_run_directory_stands_for_its_newest_snapshot(tmp_path):
    from core.runs import snapshot_path

    run = tmp_path / "00000-cpu256-heads-test"
    run.mkdir()
    with pytest.raises(ValueError, match="no snapshot yet"):
        handover.snapshot_parts(run)
    for nimg, n in ((4000, 3000), (8000, 6000)):
        write_tensor_file(snapshot_path(run, nimg), {"x": torch.arange(float(n))}, {}, max_part_bytes=16 << 10)
    parts = handover.snapshot_parts(run)
    assert parts[0].name == "network-snapshot-000008.safetensors.index.json" and len(parts) >= 3
    copied, calls = handover.out_call(run, tmp_path / "out", 0)
    assert calls == 1 and copied == len(parts)
    assert handover.gather(tmp_path / "back", [tmp_path / "out"]).name == parts[0].name


def test_repeated_hand_overs_do_not_mix_snapshots(sharded, tmp_path):
    """A second session: the carry folder must be fresh, and gather ignores logs and an older snapshot."""
    from core.runs import snapshot_path

    index, tensors = sharded
    folders = handover.stage(index, tmp_path / "in", max_mib=60 / 1024)
    with pytest.raises(ValueError, match="not empty"):
        handover.stage(index, tmp_path / "in", max_mib=60 / 1024)
    handover.gather(tmp_path / "snap", folders)  # the first session's snapshot stays in snap/
    run = tmp_path / "00001-next"
    run.mkdir()
    newer = write_tensor_file(snapshot_path(run, 9000), {"y": torch.ones(5000)}, {}, max_part_bytes=16 << 10)
    out = tmp_path / "device-out"
    handover.out_call(run, out, 0)
    (out / "log.txt").write_text("a log beside the parts")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "log.txt").write_text("another log of the same name")
    back = handover.gather(tmp_path / "snap", [out, tmp_path / "other"])
    assert back.name == newer.name and not (tmp_path / "snap" / "log.txt").exists()
    assert torch.equal(read_all(back)["y"], torch.ones(5000))


def test_report_copies_the_runs_log_losses_and_newest_grid(tmp_path):
    from core.runs import LOG_FILE, STATS_FILE, grid_path

    run = tmp_path / "00003-cpu256-heads-test"
    run.mkdir()
    (run / LOG_FILE).write_text("kimg 4\n")
    (run / STATS_FILE).write_text('{"kimg": 4}\n')
    for nimg in (40000, 80000):
        grid_path(run, nimg).write_bytes(str(nimg).encode())
    copies = handover.report(run, tmp_path / "out")
    assert sorted(p.name for p in copies) == sorted([f"{run.name}_{LOG_FILE}", f"{run.name}_{STATS_FILE}",
                                                     grid_path(run, 80000).name])
    assert (tmp_path / "out" / grid_path(run, 80000).name).read_bytes() == b"80000"
    assert (tmp_path / "out" / f"{run.name}_{LOG_FILE}").read_text() == "kimg 4\n"
    with pytest.raises(FileExistsError):  # a second report into the same folder overwrites nothing
        handover.report(run, tmp_path / "out")
    with pytest.raises(ValueError, match="not a run directory"):
        handover.report(tmp_path / "out", tmp_path / "elsewhere")
