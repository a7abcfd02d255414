"""The inversion benchmarks run (tiny settings), so the GPU runs of the full ones do not die on plumbing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


def test_ground_truth_bench_without_a_held_out_split_says_how_to_make_one(tmp_path, capsys):
    import bench.inversion_groundtruth as gt

    (tmp_path / "heads").mkdir()  # a folder, but no test/ split in it
    with pytest.raises(SystemExit) as exit_info:
        gt.main(["--preset-model", "tiny", "--dataset", str(tmp_path / "heads"), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no held-out split" in err and "test/dataset.json" in err and "training.synthetic_heads" in err
    (tmp_path / "notes.txt").write_text("not a dataset")  # a file that is no zip: the same kind of answer
    with pytest.raises(SystemExit):
        gt.main(["--preset-model", "tiny", "--dataset", str(tmp_path / "notes.txt"), "--device", "cpu"])
    assert "neither a dataset folder nor a zip" in capsys.readouterr().err


def test_ground_truth_heads_come_from_the_split_owner_folder_or_zip(tmp_path):
    import shutil

    import bench.inversion_groundtruth as gt
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset

    data = tmp_path / "heads"
    write_dataset(DatasetConfig(out=data, num_identities=3, views_per_identity=1, resolution=32, seed=2,
                                test_fraction=0.67, workers=1, device="cpu"), progress=False)
    heads = gt.load_heads(data, 5, 16, input_view=0)
    assert heads.labels == ["head 00001", "head 00002"]  # the held-out identities, at most ``count``
    assert tuple(heads.images.shape) == (2, 10, 3, 16, 16) and tuple(heads.masks.shape) == (2, 10, 1, 16, 16)
    assert heads.photos.shape == (2, 32, 32, 3) and len(heads.cameras) == 10
    zipped = gt.load_heads(Path(shutil.make_archive(str(tmp_path / "heads"), "zip", data)), 1, 16, 0)
    assert zipped.labels == ["head 00001"] and torch.equal(zipped.images[0], heads.images[0])


@pytest.mark.slow
def test_ground_truth_bench_runs(tmp_path):
    data = tmp_path / "heads"
    _run("training.synthetic_heads", "--out", str(data), "--num-identities", "2", "--test-fraction", "0.5",
         "--views-per-identity", "1", "--resolution", "64", "--workers", "1")
    out = _run("bench.inversion_groundtruth", "--preset-model", "tiny", "--dataset", str(data), "--heads", "1",
               "--steps", "2", "--tune-steps", "1", "--bound-steps", "1", "--sc-heads", "1", "--spaces", "w",
               "--device", "cpu", "--json", str(tmp_path / "gt.json"), "--figure-dir", str(tmp_path),
               "--variant", "tuning.hidden_weight=1", "--variant",
               "latent.camera_candidates=3 latent.camera_search_steps=1 preprocess.mirror_landmarks=1")
    result = json.loads((tmp_path / "gt.json").read_text())
    rows = result["rows"]
    assert {"true camera, W, stage 1", "true camera, W, stage 1+2"} <= set(rows)
    row = rows["true camera, W, stage 1+2"]
    assert len(row["input_psnr"]) == 1 and len(row["novel_psnr"]) == 1 and 0 < row["novel_ssim"][0] <= 1
    assert len(result["bound"]["psnr"]) == 1 and "W, stage 1+2" in result["self_consistency"]
    assert "tuning.hidden_weight=1" in result["variants"] and "bound (W+ fit to all 10 views)" in out
    searched = result["variants"]["latent.camera_candidates=3 latent.camera_search_steps=1 preprocess.mirror_landmarks=1"]
    assert "estimated camera, W, stage 1" in searched["rows"], searched["rows"]["_problems"]
    # the per-view breakdown: every row, the self-consistency rows and the bound, in the JSON and the table
    assert result["view_labels"] == ["0/0", "-45", "45", "-90", "90", "-135", "135", "180", "up", "down"]
    for r in [*(r for n, r in rows.items() if not n.startswith("_")), *result["self_consistency"].values(),
              result["bound"]]:
        assert len(r["views_psnr"]) == 10 and all(0 < v < 100 for v in r["views_psnr"])
    novel = [v for i, v in enumerate(row["view_psnr"][0]) if i != 0]
    assert abs(sum(novel) / 9 - row["novel_psnr"][0]) < 1e-6  # the novel column is the mean of the 9 others
    assert "per-view PSNR" in out and "0/0   -45    45   -90    90  -135   135   180    up  down" in out


def test_ground_truth_overrides_of_one_settings_object_apply_together():
    """``latent.camera_candidates=9`` alone would fail validation with the quick preset's steps; given with
    ``latent.camera_search_steps`` it is valid, and nested and boolean fields parse."""
    import bench.inversion_groundtruth as gt
    from inversion.config import preset_settings

    s = preset_settings("quick", resolution=64, offline=True)
    out = gt.apply_overrides(s, ["latent.camera_candidates=9", "latent.camera_search_steps=10",
                                 "tuning.losses.ssim=0.25", "preprocess.mirror_landmarks=0"])
    assert (out.latent.camera_candidates, out.latent.camera_search_steps) == (9, 10)
    assert out.tuning.losses.ssim == 0.25 and out.preprocess.mirror_landmarks is False
    assert out.latent.steps == s.latent.steps and out.tuning.steps == s.tuning.steps
    with pytest.raises(ValueError, match="camera_search_steps"):
        gt.apply_overrides(s, ["latent.camera_candidates=9", "latent.camera_search_steps=60"])


def test_ground_truth_view_labels_name_the_evaluation_views():
    from bench.inversion_groundtruth_report import view_labels
    from training.synthetic_heads.cameras import EVAL_VIEWS, eval_cameras, pose_cameras

    assert len(EVAL_VIEWS) == 10
    assert view_labels(eval_cameras()) == ["0/0", "-45", "45", "-90", "90", "-135", "135", "180", "up", "down"]
    assert view_labels(pose_cameras([30.0], [10.0])) == ["30/10"]


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
                              heads=6, input_view=0, tag="")
    gt.record_figures(result, args, "cpu")
    assert set(recorded) == {"inversion_gt_input_psnr", "inversion_gt_novel_psnr", "inversion_camera_error_deg"}
    assert recorded["inversion_gt_input_psnr"][:2] == (26.0, "dB")
    assert recorded["inversion_gt_novel_psnr"][:2] == (15.0, "dB")
    assert recorded["inversion_camera_error_deg"][:2] == (3.0, "deg")
    note = recorded["inversion_gt_novel_psnr"][2]
    for part in ("m.safetensors on cpu", "preset quick (60 + 30 steps", "space W", "stage 1 on 5 of 6",
                 "no face in 1", "stage 2 on 2"):
        assert part in note, (part, note)
    recorded.clear()  # --tag: the names get @TAG (bench.default_model_quality's rule), the values stay
    gt.record_figures(result, argparse.Namespace(**{**vars(args), "tag": "v2-run2-668"}), "cpu")
    assert set(recorded) == {"inversion_gt_input_psnr@v2-run2-668", "inversion_gt_novel_psnr@v2-run2-668",
                             "inversion_camera_error_deg@v2-run2-668"}
    assert recorded["inversion_camera_error_deg@v2-run2-668"][:2] == (3.0, "deg")
