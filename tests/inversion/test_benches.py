"""The inversion benchmarks run (tiny settings), so the GPU runs of the full ones do not die on plumbing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_speed_bench_runs_with_stand_ins():
    out = _run("bench.inversion", "--preset", "tiny", "--steps", "2", "--tune-steps", "1", "--device", "cpu",
               "--no-record")
    assert "stage 1:" in out and "stand-in LPIPS/ID nets" in out


@pytest.mark.slow
def test_ground_truth_bench_runs(tmp_path):
    pytest.importorskip("skimage")  # not needed itself, but the same optional install as the other real-data tests
    _run("bench.inversion_groundtruth", "--preset", "tiny", "--random-loss-weights", "--steps", "1",
         "--tune-steps", "1", "--heads", "1", "--json", str(tmp_path / "gt.json"))
    result = json.loads((tmp_path / "gt.json").read_text())
    assert result["summary"]["heads"] == 1
    row = result["rows"][0]
    assert "error" in row or {"camera_error_deg", "stage1", "stage1+2"} <= set(row)
