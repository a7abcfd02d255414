"""Ground-truth quality metrics (training/metrics): SSIM/PSNR, floaters, the held-out scoring of gt_fit, and
the CLI's gt_fit / floaters / consistency on a synthetic dataset's held-out split."""

from __future__ import annotations

import json
import math

from pathlib import Path

import numpy as np
import pytest
import torch

from core.gaussians import GaussianSet
from core.generator import PRESETS, Generator
from core.model_files import save_generator
from training.metrics import load_eval_split
from training.metrics.__main__ import main as cli_main
from training.metrics.floaters import dilation_px, floaters_of_alpha, head_silhouette, scene_floaters
from training.metrics.groundtruth import GtFitSettings, eval_targets, gt_fit, score_scene
from training.metrics.image_quality import psnr, ssim
from training.synthetic_heads.cameras import eval_cameras
from training.synthetic_heads.config import DatasetConfig
from training.synthetic_heads.dataset import write_dataset
from tiny_generators import lively_tiny_generator  # tests/tiny_generators.py


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def split_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gt") / "ds"
    write_dataset(DatasetConfig(out=out, num_identities=3, views_per_identity=1, resolution=48, seed=2,
                                test_fraction=0.67, workers=1, device="cpu"), progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(PRESETS["tiny"]).eval()


# ---------------------------------------------------------------------------------------------- PSNR, SSIM


def test_ssim_matches_scikit_image_and_psnr_the_formula():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 40, 33, 3, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    mine = ssim(a, b)
    for i in range(3):
        ref = skimage_metrics.structural_similarity(a[i].numpy(), b[i].numpy(), gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False, data_range=1.0, channel_axis=-1)
        assert mine[i].item() == pytest.approx(float(ref), abs=1e-5)
    assert torch.allclose(ssim(a, a), torch.ones(3, dtype=torch.float64))
    mse = ((a.double() - b.double()) ** 2).mean((1, 2, 3))
    assert torch.allclose(psnr(a, b), -10 * torch.log10(mse)) and psnr(a, a).isinf().all()
    with pytest.raises(ValueError, match="at least 11 x 11 px"):
        ssim(a[:, :8, :8], b[:, :8, :8])


# ---------------------------------------------------------------------------------------------- floaters


def disc(res: int, radius: float, centre=(0.5, 0.5)) -> np.ndarray:
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    return (((xx / res - centre[0]) ** 2 + (yy / res - centre[1]) ** 2) < radius ** 2).astype(np.float64)


def test_floater_share_counts_opacity_away_from_the_head_only():
    res = 128
    head = disc(res, 0.3)
    assert floaters_of_alpha(head).share == 0.0
    # A soft edge within the dilation and a hole in the head are not floaters.
    soft = np.maximum(head, 0.3 * disc(res, 0.3 + 2 / res))
    soft[60:64, 60:64] = 0.2
    assert floaters_of_alpha(soft).share == 0.0
    # A faint blob in a corner is, by exactly its opacity; a smaller solid one too (not the largest region).
    speck = 0.25 * disc(res, 0.05, (0.1, 0.1))
    solid_speck = disc(res, 0.04, (0.9, 0.9))
    r = floaters_of_alpha(np.stack([head + speck, head + solid_speck]))
    assert r.views == 2
    assert r.outside == pytest.approx(speck.sum() + solid_speck.sum())
    assert r.share == pytest.approx(r.outside / (2 * head.sum() + speck.sum() + solid_speck.sum()))
    sil = head_silhouette(head)
    assert sil.sum() > head.sum() and not sil[0, 0]
    assert dilation_px(128) == 3 and dilation_px(256) == 5 and dilation_px(32) == 2
    assert math.isnan(floaters_of_alpha(np.zeros((4, 4))).share)


def test_ground_truth_heads_have_almost_no_floaters_and_added_fog_is_measured():
    from training.synthetic_heads import make_head

    cams = eval_cameras()
    head = make_head(0)
    clean = scene_floaters(head, cams, 64, backend="torch")
    assert clean.views == 10 and clean.share < 0.002
    g = torch.Generator().manual_seed(0)
    n = 1000
    means = torch.rand(n, 3, generator=g) - 0.5
    means = means * 0.95 / means.abs().amax(-1, keepdim=True)  # on the cube's shell, away from the head
    fog = GaussianSet(means, torch.tensor([1.0, 0, 0, 0]).expand(n, 4), torch.full((n, 3), math.log(0.01)),
                      torch.full((n,), -1.0), torch.zeros(n, 1, 3))
    foggy = scene_floaters(GaussianSet.cat([head, fog]), cams, 64, backend="torch")
    assert foggy.share > 10 * clean.share and foggy.share > 0.01


# ---------------------------------------------------------------------------------------------- ground-truth fit


def test_the_ground_truth_scores_perfectly_and_a_shifted_head_does_not(split_dataset):
    split = load_eval_split(split_dataset)
    assert len(split) == 2
    ident = split[0]
    images, masks = eval_targets(ident)
    exact = score_scene(ident.gt, ident, images, masks)
    assert exact.psnr_all == math.inf and all(s == pytest.approx(1.0) for s in exact.ssim_views)
    assert exact.outside_gt.share < 0.002
    assert np.array_equal(exact.render, images) and exact.truth is images  # what was scored, to look at
    g = ident.gt
    shifted = GaussianSet(g.means + torch.tensor([0.03, 0.0, 0.0]), g.quats, g.log_scales, g.opacity_logits, g.sh)
    off = score_scene(shifted, ident, images, masks)
    assert 8.0 < off.psnr_all < 30.0 and max(off.ssim_views) < 0.99 and len(off.psnr_views) == 10


def test_a_zipped_split_loads_as_the_folder_does_and_is_closed(split_dataset, tmp_path, monkeypatch):
    import shutil
    import zipfile

    from training.metrics import eval_split

    archive = Path(shutil.make_archive(str(tmp_path / "ds"), "zip", split_dataset))
    opened: list[zipfile.ZipFile] = []

    class Tracked(zipfile.ZipFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(eval_split.zipfile, "ZipFile", Tracked)
    zipped, folder = load_eval_split(archive), load_eval_split(split_dataset)
    assert [z.identity for z in zipped] == [f.identity for f in folder] == [1, 2]
    assert all(np.array_equal(z.images, f.images) for z, f in zip(zipped, folder))
    assert len(eval_split.held_out_labels(archive)) == 20
    assert len(opened) == 2 and all(z.fp is None for z in opened)  # both readers closed their zip


def test_targets_at_another_resolution_are_the_writers_renders(split_dataset, tmp_path):
    ident = load_eval_split(split_dataset)[0]
    images, masks = eval_targets(ident, 32)
    ref = tmp_path / "ds32"
    write_dataset(DatasetConfig(out=ref, num_identities=3, views_per_identity=1, resolution=32, seed=2,
                                test_fraction=0.67, workers=1, device="cpu"), progress=False)
    want = load_eval_split(ref)[0]
    assert images.shape == (10, 32, 32, 3)
    assert np.abs(images.astype(int) - want.images.astype(int)).max() <= 1
    assert np.abs(masks.astype(int) - want.masks.astype(int)).max() <= 1


def test_gt_fit_asks_for_enough_heads(split_dataset, tiny_generator):
    with pytest.raises(ValueError, match="needs 16 held-out heads, the split has 2"):
        gt_fit(tiny_generator, load_eval_split(split_dataset), GtFitSettings(heads=16))
    with pytest.raises(ValueError, match="space"):
        GtFitSettings(space="z")


@pytest.fixture(scope="module")
def responsive_generator():
    """The tiny generator with its zero-initialised transformer gates randomised, so that w changes the head
    (at initialisation every block is the identity and the output ignores w)."""
    return lively_tiny_generator(seed=1, gate_std=0.2)


def test_the_fit_runs_at_the_settings_step_size_and_length(split_dataset, responsive_generator, monkeypatch):
    import core.latent_fit
    from training.metrics.groundtruth import fit_latent_multiview

    with pytest.raises(ValueError, match="lr > 0"):
        GtFitSettings(lr=0.0)
    seen = []

    def spy(G, target, config):
        seen.append(config)
        return type("Fit", (), {"ws": torch.zeros(target.images.shape[0], 1, G.config.w_dim)})()

    monkeypatch.setattr(core.latent_fit, "fit_latent", spy)
    images = torch.zeros(2, 10, 8, 8, 3)
    fit_latent_multiview(responsive_generator, images, load_eval_split(split_dataset)[0].cameras,
                         GtFitSettings(steps=7, lr=0.02, space="w"))
    assert (seen[0].steps, seen[0].lr, seen[0].space) == (7, 0.02, "w")
    assert (GtFitSettings().steps, GtFitSettings().lr) == (2000, 0.03)  # the recorded protocol (docstring)


def test_gt_fit_fits_every_head_and_improves_with_steps(split_dataset, responsive_generator):
    pytest.importorskip("core.latent_fit", reason="core.latent_fit (inversion issue) has not landed")
    split = load_eval_split(split_dataset)
    few = gt_fit(responsive_generator, split, GtFitSettings(heads=2, steps=1, resolution=32))
    more = gt_fit(responsive_generator, split, GtFitSettings(heads=2, steps=20, resolution=32, batch=1))
    assert [h.identity for h in more.heads] == [1, 2] and len(more.psnr_by_view) == 10
    assert all(m.psnr_all > f.psnr_all + 0.1 for m, f in zip(more.heads, few.heads))
    assert more.ssim > few.ssim and 0 <= more.outside_gt <= 1


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_floaters_and_consistency_on_the_held_out_split(tmp_path, capsys, tiny_generator, split_dataset):
    net = tmp_path / "G.pkl"
    save_generator(tiny_generator, net)
    argv = ["--network", str(net), "--data", str(split_dataset), "--metrics", "floaters,consistency",
            "--floaters-heads", "2", "--consistency-scenes", "1", "--consistency-views", "full", "--device", "cpu"]
    assert cli_main(argv) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert [r["metric"] for r in lines] == ["floaters", "consistency"]
    assert lines[0]["results"]["floaters_views"] == 20 and 0 <= lines[0]["results"]["floaters_share"] <= 1
    assert "consistency_psnr" in lines[1]["results"]
    assert cli_main(["--network", str(net), "--metrics", "gt_fit"]) == 2
    assert "gt_fit needs --data" in capsys.readouterr().err
    assert cli_main(["--network", str(net), "--metrics", "gt_fit,flaoters"]) == 2
    assert "unknown metric 'flaoters'" in capsys.readouterr().err
    no_split = tmp_path / "nosplit"
    write_dataset(DatasetConfig(out=no_split, num_identities=1, views_per_identity=1, resolution=16, workers=1,
                                device="cpu"), progress=False)
    assert cli_main(["--network", str(net), "--data", str(no_split), "--metrics", "gt_fit"]) == 2
    assert "has no held-out split" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- consistency ceiling


def test_scenes_consistency_pools_seeded_view_pairs_and_sees_fog():
    from training.metrics.consistency import (
        ConsistencyResult, consistency_view_pairs, reprojection_consistency, scenes_consistency,
    )
    from training.synthetic_heads import make_head

    heads = [make_head(s) for s in (0, 1)]
    r = scenes_consistency(heads, 48, seed=3)
    a, b = consistency_view_pairs(2, torch.Generator().manual_seed(3))
    by_hand = ConsistencyResult.pool([reprojection_consistency(h, a[i], b[i], 48) for i, h in enumerate(heads)])
    assert r.as_dict() == by_hand.as_dict() and r.compared > 500 and r.psnr > 22
    g = torch.Generator().manual_seed(0)
    n = 3000
    fog = GaussianSet((torch.rand(n, 3, generator=g) - 0.5) * 0.7, torch.tensor([1.0, 0, 0, 0]).expand(n, 4),
                      torch.full((n, 3), math.log(0.01)), torch.full((n,), -1.0), torch.rand(n, 1, 3, generator=g))
    foggy = scenes_consistency([GaussianSet.cat([h, fog]) for h in heads], 48, seed=3)
    assert foggy.psnr < r.psnr - 1


def test_bench_records_the_ground_truths_consistency(split_dataset, monkeypatch):
    import bench.default_model_quality as bench

    recorded = []
    monkeypatch.setattr(bench, "record", lambda name, value, unit, device, note="": recorded.append((name, note)))
    with pytest.raises(SystemExit, match="has 2 heads, 5 needed"):  # the fixture's split holds two
        bench.ground_truth_consistency(split_dataset, 32, "t", heads=5)
    bench.ground_truth_consistency(split_dataset, 32, "t", heads=2)
    assert [n for n, _ in recorded] == ["default_model_consistency_psnr@t", "default_model_consistency_psnr_full@t"]
    assert "ground truth: held-out identities" in recorded[0][1]
    with pytest.raises(SystemExit):  # the flag needs the data and a resolution
        bench.main(["--ground-truth", "--metrics", "consistency"])
