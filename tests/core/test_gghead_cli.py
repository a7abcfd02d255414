"""The headless tools on a GGHead checkpoint (tiny stand-in in the exact upstream pickle format): a head exported
as a standard 3DGS ``.ply`` (SH degree 1, channel-major ``f_rest``, checked against the float64 reference of
upstream's decoding and read with plyfile), ``python -m core.orbit_video`` from the checkpoint and from that
``.ply`` (the same frames), and ``python -m inversion`` with tuning (its tuned GGHead generator loads again)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gghead_reference as ref
from core.gghead.config import PRESETS
from core.gghead.format_writer import write_gghead_checkpoint
from core.latent import load_generator_source, seed_ws
from core.model_files import load_generator
from core.ply import write_ply

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("gghead_cli") / "checkpoint-000100.pkl"
    tensors = write_gghead_checkpoint(path, TINY, seed=2)
    return path, tensors


def _frames(path) -> np.ndarray:
    import imageio

    with imageio.get_reader(path) as r:
        return np.stack([f for f in r]).astype(int)


def test_ply_export_is_the_reference_head_in_the_standard_layout(checkpoint, tmp_path):
    from plyfile import PlyData

    path, T = checkpoint
    G = load_generator_source(str(path), "cpu")
    ws = seed_ws(G, 4, 0.7)
    with torch.no_grad():
        gs = G.synthesis(ws).gaussians[0]
    ply = tmp_path / "head.ply"
    write_ply(ply, gs)
    v = PlyData.read(str(ply))["vertex"]
    names = [p.name for p in v.properties]
    assert names == (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                     + [f"f_rest_{i}" for i in range(9)]
                     + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    want = ref.forward(T, ws.double(), ref.RELEASED, TINY.plane_resolution)[0]
    col = {n: np.asarray(v[n], dtype=np.float64) for n in names}
    # upstream's colour channel 3k + c (coefficient k of colour c) -> f_dc_c (k = 0) / f_rest_{3c + k - 1}
    for c in range(3):
        np.testing.assert_allclose(col[f"f_dc_{c}"], want["sh"][:, 0, c], atol=5e-5)
        for k in range(1, 4):
            np.testing.assert_allclose(col[f"f_rest_{3 * c + k - 1}"], want["sh"][:, k, c], atol=5e-5)
    np.testing.assert_allclose(np.stack([col[a] for a in "xyz"], 1), want["positions"], atol=2e-5)
    np.testing.assert_allclose(np.stack([col[f"scale_{i}"] for i in range(3)], 1), want["log_scales"], atol=2e-5)
    np.testing.assert_allclose(np.stack([col[f"rot_{i}"] for i in range(4)], 1), want["rotations"], atol=2e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-col["opacity"])), np.clip(want["opacities"], 1.2e-7, 1), atol=2e-5)
    assert not np.any([col[n] for n in ("nx", "ny", "nz")])


def test_orbit_video_cli_from_the_checkpoint_and_from_its_ply(checkpoint, tmp_path, capsys):
    from core.orbit_video import main

    path, _ = checkpoint
    common = ["--frames", "3", "--resolution", "32", "--device", "cpu", "--backend", "torch"]
    assert main(["--model", str(path), "--seed", "4", "--psi", "0.7", "--out", str(tmp_path / "a.mp4"), *common]) == 0
    assert "wrote" in capsys.readouterr().out
    G = load_generator_source(str(path), "cpu")
    with torch.no_grad():
        write_ply(tmp_path / "head.ply", G.synthesis(seed_ws(G, 4, 0.7)).gaussians[0])
    assert main(["--ply", str(tmp_path / "head.ply"), "--out", str(tmp_path / "b.mp4"), *common]) == 0
    a, b = _frames(tmp_path / "a.mp4"), _frames(tmp_path / "b.mp4")
    assert a.shape == (3, 32, 32, 3) and len({f.tobytes() for f in a}) == 3
    assert np.abs(a - b).mean() < 1.0, "the .ply's orbit is not the checkpoint's head"
    assert np.abs(a - 255).mean() > 5, "nothing drawn"


@pytest.mark.slow
def test_inversion_cli_on_a_gghead_checkpoint(checkpoint, tmp_path, capsys):
    from core.ply import read_ply
    from inversion.__main__ import main

    path, _ = checkpoint
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(pytest.importorskip("skimage.data").astronaut()).save(photo)
    out = tmp_path / "out"
    code = main([str(photo), "--model", str(path), "--out", str(out), "--framing", "ffhq-eg3d", "--steps", "2",
                 "--tune-steps", "2", "--batch-size", "1", "--tune-batch-size", "1", "--id-weight", "0",
                 "--tune-id-weight", "0", "--random-loss-weights", "--orbit-frames", "2", "--device", "cpu",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["stage1"]["steps_done"] == 2 and report["stage2"]["steps_done"] == 2
    assert report["photos"] == ["astronaut.jpg"]
    assert Image.open(out / "aligned" / "00_astronaut.png").size == (TINY.resolution, TINY.resolution)
    tuned = load_generator(out / "generator_tuned.pkl")
    assert tuned.source_format == "splathead-gghead" and tuned.generator.family == "gghead"
    original = load_generator(path).generator.state_dict()
    assert any(not torch.equal(v, original[k]) for k, v in tuned.generator.state_dict().items())
    with np.load(out / "pivot.npz") as f:
        pivot = torch.from_numpy(f["ws"]).float()
    assert tuple(pivot.shape) == (1, TINY.num_ws, TINY.w_dim)
    head = read_ply(out / "head.ply")
    assert head.sh_degree == 1 and head.num_gaussians == tuned.generator.config.num_gaussians
    with torch.no_grad():
        want = tuned.generator.synthesis(pivot).gaussians[0]
    torch.testing.assert_close(head.means, want.means)
    torch.testing.assert_close(head.sh, want.sh)
