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
    data = tmp_path / "heads"
    _run("training.synthetic_heads", "--out", str(data), "--num-identities", "2", "--test-fraction", "0.5",
         "--views-per-identity", "1", "--resolution", "64", "--workers", "1")
    out = _run("bench.inversion_groundtruth", "--preset-model", "tiny", "--dataset", str(data), "--heads", "1",
               "--steps", "2", "--tune-steps", "1", "--bound-steps", "1", "--sc-heads", "1", "--spaces", "w",
               "--device", "cpu", "--json", str(tmp_path / "gt.json"), "--figure-dir", str(tmp_path),
               "--variant", "tuning.hidden_weight=1")
    result = json.loads((tmp_path / "gt.json").read_text())
    rows = result["rows"]
    assert {"true camera, W, stage 1", "true camera, W, stage 1+2"} <= set(rows)
    row = rows["true camera, W, stage 1+2"]
    assert len(row["input_psnr"]) == 1 and len(row["novel_psnr"]) == 1 and 0 < row["novel_ssim"][0] <= 1
    assert len(result["bound"]["psnr"]) == 1 and "W, stage 1+2" in result["self_consistency"]
    assert "tuning.hidden_weight=1" in result["variants"] and "bound (W+ fit to all 10 views)" in out


def test_ground_truth_record_notes_say_what_was_measured(monkeypatch):
    """The recorded figures name model, device, preset, space and the heads of each stage; the camera error is
    the median over every stage-1 head, not only the tuned ones."""
    import argparse

    import bench.inversion_groundtruth as gt
    import bench.results

    recorded = {}
    monkeypatch.setattr(bench.results, "record", lambda name, value, unit, device, note="": recorded.update(
        {name: (value, unit, note)}))
    stage1 = {"heads": 5, "input_psnr": [20.0] * 5, "novel_psnr": [14.0] * 5, "camera_error_deg": [1, 2, 3, 9, 9]}
    tuned = {"heads": 2, "input_psnr": [25.0, 27.0], "novel_psnr": [14.5, 15.5], "camera_error_deg": [1, 2]}
    result = {"settings": {"latent": {"space": "w", "steps": 60}, "tuning": {"steps": 30}}, "bound": None,
              "rows": {"estimated camera, W, stage 1": stage1, "estimated camera, W, stage 1+2": tuned}}
    args = argparse.Namespace(dataset=Path("data/heldout128"), model="m.safetensors", device="cpu", preset="quick",
                              heads=6, input_view=0)
    gt.record_figures(result, args, "cpu")
    assert set(recorded) == {"inversion_gt_input_psnr", "inversion_gt_novel_psnr", "inversion_camera_error_deg"}
    assert recorded["inversion_gt_input_psnr"][:2] == (26.0, "dB")
    assert recorded["inversion_gt_novel_psnr"][:2] == (15.0, "dB")
    assert recorded["inversion_camera_error_deg"][:2] == (3.0, "deg")
    note = recorded["inversion_gt_novel_psnr"][2]
    for part in ("m.safetensors on cpu", "preset quick (60 + 30 steps", "space W", "stage 1 on 5 of 6",
                 "no face in 1", "stage 2 on 2"):
        assert part in note, (part, note)
