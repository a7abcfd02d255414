"""``python -m inversion`` end to end on a tiny model with stand-in loss networks, and its error exits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.model_files import load_generator, save_generator
from inversion.__main__ import main
from inversion.outputs import read_pivot


@pytest.fixture
def model_file(tmp_path, tiny_G):
    path = tmp_path / "tiny.pkl"
    save_generator(tiny_G, path)
    return path


@pytest.mark.slow
def test_cli_writes_every_output(tmp_path, model_file, astronaut, capsys):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo)
    noface = tmp_path / "wall.png"
    Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(noface)
    out = tmp_path / "out"
    code = main([str(photo), str(noface), "--model", str(model_file), "--out", str(out), "--steps", "2",
                 "--tune-steps", "2", "--batch-size", "1", "--tune-batch-size", "1", "--id-weight", "0",
                 "--tune-id-weight", "0", "--random-loss-weights", "--orbit-frames", "3", "--quiet",
                 "--preset", "standard"])  # with LPIPS (quick has none)
    assert code == 0
    assert "wall.png: no face found" in capsys.readouterr().err
    for name in ("aligned/00_astronaut.png", "aligned/00_astronaut_weight.png", "cameras.json", "pivot.npz",
                 "generator_tuned.safetensors", "head.ply", "renders/00_astronaut_stage1.png",
                 "renders/00_astronaut_stage2.png", "report.json"):
        assert (out / name).is_file(), name
    assert (out / "orbit.mp4").is_file() or (out / "orbit.gif").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "splathead-inversion-report"
    assert report["stage1"]["steps_done"] == 2 and report["stage2"]["history"]["step"] == [1.0, 2.0]
    assert report["stage1"]["loss_networks"] == {"lpips": "random stand-in"}
    assert set(report["timings"]) == {"preprocess", "stage1", "stage2", "total"}
    assert report["photos"] == ["astronaut.jpg"] and "wall.png: no face found" in report["skipped"][0]
    ws, cams, names = read_pivot(out / "pivot.npz")
    assert ws.shape[-1] == 64 and names == ["astronaut.jpg"] and tuple(cams.batch_shape) == (1,)
    tuned = load_generator(out / "generator_tuned.safetensors").generator
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(),
                                                     load_generator(model_file).generator.state_dict().values()))
    cams_json = json.loads((out / "cameras.json").read_text())
    assert len(cams_json[0]["initial"]["label"]) == 25 and "refined" in cams_json[0]


def test_cli_exits_2_without_a_usable_photo(tmp_path, model_file, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    code = main([str(bad), "--model", str(model_file), "--out", str(tmp_path / "o"), "--id-weight", "0",
                 "--lpips-weight", "0", "--tune-steps", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jpg: not an image file" in err and "no usable photo" in err


def test_cli_names_missing_weights(tmp_path, model_file, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    code = main([str(tmp_path / "x.jpg"), "--model", str(model_file), "--out", str(tmp_path / "o"), "--quiet",
                 "--offline", "--preset", "standard"])  # quick needs no loss networks (MSE + SSIM)
    err = capsys.readouterr().err
    assert code == 2 and "alexnet-owt-7be5be79.pth" in err and str(tmp_path / "th") in err


def test_cli_refuses_to_replace_results_unless_asked(tmp_path, model_file, astronaut, capsys):
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo)
    out = tmp_path / "out"
    out.mkdir()
    (out / "head.ply").write_bytes(b"the user's head")
    (out / "report.json").write_text("{}")
    (out / "generator_tuned.safetensors").write_bytes(b"an earlier run's tuned generator")
    (out / "notes.txt").write_text("the user's own notes")
    args = [str(photo), "--model", str(model_file), "--out", str(out), "--steps", "1", "--tune-steps", "0",
            "--id-weight", "0", "--lpips-weight", "0", "--orbit-frames", "0", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds inversion results (generator_tuned.safetensors, head.ply, report.json)" in err and "--overwrite" in err
    assert (out / "head.ply").read_bytes() == b"the user's head"  # untouched
    assert main(args + ["--overwrite"]) == 0
    assert (out / "head.ply").read_bytes() != b"the user's head"
    assert json.loads((out / "report.json").read_text())["stage2"] is None
    # no tuning this time: the earlier run's tuned generator does not stay beside these results
    assert not (out / "generator_tuned.safetensors").exists()
    assert (out / "notes.txt").read_text() == "the user's own notes"  # not a result: never touched


def test_the_fit_resolution_is_the_presets_unless_overridden():
    from inversion.__main__ import build_parser, settings_from_args

    base = ["photo.jpg", "--model", "m.safetensors", "--out", "o", "--device", "cpu", "--preset", "quick"]
    quick = settings_from_args(build_parser().parse_args(base), 256)
    assert (quick.latent.max_resolution, quick.tuning.max_resolution) == (128, 128)
    full = settings_from_args(build_parser().parse_args(base + ["--fit-resolution", "0",
                                                                "--tune-fit-resolution", "0"]), 256)
    assert (full.latent.max_resolution, full.tuning.max_resolution) == (0, 0)
    assert full.preprocess.resolution == 256 and full.latent.steps == quick.latent.steps
