"""Metrics (training/metrics): Frechet distance, streaming statistics, FID with a stand-in network, Inception
loading and its error, the reprojection-consistency metric, ground-truth comparison and the CLI.

No pretrained network is used: FID runs on a tiny random network that the tests ask for by name, and the
Inception loader is tested with a tiny TorchScript module written here.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from core.camera import Cameras, orbit_cameras
from core.gaussians import GaussianSet
from core.generator import PRESETS, Generator
from core.model_files import save_generator
from core.render import render
from training.metrics import (
    FeatureStats, MissingWeightsError, depth_moments, fake_stats, fid, fid3d, fid_from_stats, find_inception,
    frechet_distance, generator_consistency, generator_sampler, gt_consistency, load_eval_split, load_inception,
    load_torchscript_features, real_stats, reprojection_consistency, stand_in_features, yaw_offset_cameras,
)
from training.metrics.__main__ import main as cli_main
from training.metrics.features import INCEPTION_FILE, INCEPTION_URL

RES = 64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: one thread is as fast, and far faster when another job shares the 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------- Frechet distance


def random_spd(d: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_is_zero_for_identical_stats_symmetric_and_matches_sqrtm():
    rng = np.random.default_rng(1)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert d12 == pytest.approx(d21, rel=1e-10)
    # The textbook formula (StyleGAN3 / pytorch-fid) with scipy's matrix square root.
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert d12 == pytest.approx(reference, rel=1e-8)
    # Rank-deficient covariances (fewer samples than dimensions) stay finite and non-negative.
    low = frechet_distance(mu1, random_spd(d, rng, rank=3), mu2, random_spd(d, rng, rank=5))
    assert math.isfinite(low) and low >= 0


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------------------------------------- statistics


def test_streaming_stats_equal_batch_stats_and_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(503, 7)) * rng.uniform(0.5, 4.0, 7) + 1e3  # large offset: tests the centred update
    stats = FeatureStats(7)
    for chunk in np.split(x, [1, 50, 51, 300]):
        stats.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False, bias=True), rtol=1e-9, atol=1e-9)
    assert stats.count == 503
    merged = FeatureStats.of(x[:200]).merge(FeatureStats.of(x[200:]))
    np.testing.assert_allclose(merged.cov, stats.cov, rtol=1e-9, atol=1e-9)
    stats.save(tmp_path / "s.npz", meta={"what": "test"})
    back = FeatureStats.load(tmp_path / "s.npz")
    assert back.count == stats.count
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.cov, stats.cov)
    with pytest.raises(ValueError, match=r"\[B, 7\]"):
        stats.update(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.full((1, 7), np.nan))


# ---------------------------------------------------------------------------------------------- FID with the stand-in


def blob_images(n: int, seed: int, shift: int = 0, size: int = 24) -> torch.Tensor:
    """A toy image distribution: a random bright ellipse on a random dark background (uint8 [n, 3, H, W])."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    c = torch.rand(n, 2, generator=g) * 0.8 - 0.4
    r = 0.3 + 0.3 * torch.rand(n, 2, generator=g)
    inside = (((xx - c[:, :1, None]) / r[:, :1, None]) ** 2 + ((yy - c[:, 1:, None]) / r[:, 1:, None]) ** 2) < 1
    fg = 150 + 100 * torch.rand(n, 3, 1, 1, generator=g)
    bg = 60 * torch.rand(n, 3, 1, 1, generator=g)
    img = torch.where(inside[:, None], fg, bg) + shift
    return img.clamp(0, 255).round().to(torch.uint8)


class ListDataset:
    """A minimal dataset: (image, label) tuples and a path for the cache key."""

    def __init__(self, images: torch.Tensor, path: str):
        self.images, self.path = images, path

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], torch.zeros(25)


def test_stand_in_fid_is_small_for_the_same_distribution_and_large_for_a_shifted_one(tmp_path):
    extractor = stand_in_features(dim=32, seed=0)
    assert "not Inception" in extractor.name and "stand-in" in extractor.name
    dataset = ListDataset(blob_images(256, seed=1), str(tmp_path / "toy"))
    same = iter(blob_images(256, seed=2).split(64))
    shifted = iter(blob_images(256, seed=3, shift=-50).split(64))
    cache = tmp_path / "cache"
    real = real_stats(dataset, extractor, batch=100, cache_dir=cache)
    assert real.count == 256 and len(list(cache.glob("real-stats-*.npz"))) == 1
    again = real_stats(dataset, extractor, batch=100, cache_dir=cache)  # from the cache
    np.testing.assert_array_equal(again.cov, real.cov)
    in_workers = real_stats(dataset, extractor, batch=100, workers=2)  # decoded in DataLoader workers
    np.testing.assert_allclose(in_workers.cov, real.cov, rtol=1e-9, atol=1e-12)
    fid_same = fid_from_stats(real, fake_stats(lambda n: next(same), extractor, 256, batch=64))
    fid_shift = fid_from_stats(real, fake_stats(lambda n: next(shifted), extractor, 256, batch=64))
    assert fid_same < 0.2 * fid_shift, (fid_same, fid_shift)
    # Another network or another subset gets its own cache entry.
    real_stats(dataset, stand_in_features(dim=32, seed=1), cache_dir=cache)
    sub = real_stats(dataset, extractor, max_images=100, cache_dir=cache)
    assert sub.count == 100 and len(list(cache.glob("real-stats-*.npz"))) == 3


def test_fid_rejects_bad_generated_images():
    extractor = stand_in_features()
    with pytest.raises(TypeError, match="uint8"):
        fake_stats(lambda n: torch.zeros(n, 3, 8, 8), extractor, 4)
    with pytest.raises(ValueError, match="returned 2 images"):
        fake_stats(lambda n: torch.zeros(2, 3, 8, 8, dtype=torch.uint8), extractor, 4, batch=4)
    with pytest.raises(ValueError, match="cache_tag"):
        real_stats([torch.zeros(3, 8, 8, dtype=torch.uint8)], extractor, cache_dir="unused")


# ---------------------------------------------------------------------------------------------- Inception loading


class TinyScripted(torch.nn.Module):
    """Stands in for NVIDIA's TorchScript Inception: uint8 in, resize inside, features with return_features."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 2)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(img.float() / 255.0, size=(12, 12), mode="bilinear", align_corners=False)
        f = self.conv(x).mean((2, 3))
        return f if return_features else self.fc(f)


def write_scripted(path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(TinyScripted()), str(path))


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No Inception anywhere: a fresh TORCH_HOME, HOME and dnnlib cache, no SPLATHEAD_INCEPTION."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DNNLIB_CACHE_DIR", str(tmp_path / "dnnlib"))
    monkeypatch.delenv("SPLATHEAD_INCEPTION", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return tmp_path


def test_missing_inception_names_the_files_the_folders_and_how_to_get_it(empty_caches):
    tmp = empty_caches
    with pytest.raises(MissingWeightsError) as info:
        load_inception()
    msg = str(info.value)
    assert INCEPTION_FILE in msg and INCEPTION_URL in msg and "does not download" in msg
    home_hub = tmp / "home" / ".cache" / "torch" / "hub" / "checkpoints"
    for folder in (tmp / "torch_home" / "hub" / "checkpoints", home_hub, tmp / "dnnlib" / "downloads"):
        assert str(folder) in msg
    assert ("*_" + INCEPTION_FILE) in msg  # dnnlib's hashed download names
    assert (str(tmp / "torch_home" / "hub" / "checkpoints"), INCEPTION_FILE) in info.value.searched
    # A StyleGAN3 pickle is recognised and named, not unpickled.
    (tmp / "dnnlib" / "downloads").mkdir(parents=True)
    (tmp / "dnnlib" / "downloads" / "abc_inception-2015-12-05.pkl").write_bytes(pickle.dumps("not loaded"))
    with pytest.raises(MissingWeightsError, match="not loaded"):
        load_inception()
    # An explicit path that does not exist says so.
    with pytest.raises(MissingWeightsError, match="nowhere.pt is not a file"):
        load_inception(tmp / "nowhere.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_torchscript_file_loads_from_a_path_and_from_the_caches(empty_caches, monkeypatch):
    tmp = empty_caches
    path = tmp / "my_net.pt"
    write_scripted(path)
    ex = load_torchscript_features(path)
    images = torch.randint(0, 256, (3, 3, 40, 30), dtype=torch.uint8)
    feats = ex(images)
    assert feats.shape == (3, 8)  # return_features=True was passed (the logits are [3, 2])
    assert ex.name.startswith("my_net@") and len(ex.name) == len("my_net@") + 12
    # As the FID Inception it must give 2048 features: this one is caught at its first call.
    with pytest.raises(ValueError, match="gives 8 features, expected 2048"):
        load_inception(path)(images)
    # Found in torch's hub cache under the standard name, and by the dnnlib download name.
    hub = tmp / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / INCEPTION_FILE).write_bytes(path.read_bytes())
    assert find_inception() == hub / INCEPTION_FILE
    assert load_inception().name == "inception-2015-12-05@" + ex.name.split("@")[1]
    (hub / INCEPTION_FILE).unlink()
    dl = tmp / "dnnlib" / "downloads"
    dl.mkdir(parents=True)
    (dl / ("0123abcd_" + INCEPTION_FILE)).write_bytes(path.read_bytes())
    assert find_inception() == dl / ("0123abcd_" + INCEPTION_FILE)
    # The same content has the same name (and statistics cache key) as in torch's cache.
    assert load_inception().name == ex.name.replace("my_net", "inception-2015-12-05")
    monkeypatch.setenv("SPLATHEAD_INCEPTION", str(path))
    assert find_inception() == path
    # A pickle is not TorchScript: refused with a clear message, nothing unpickled.
    bad = tmp / "bad.pt"
    bad.write_bytes(pickle.dumps({"weights": 1}))
    with pytest.raises(ValueError, match="not a TorchScript archive"):
        load_inception(bad)
    with pytest.raises(TypeError, match="uint8"):
        ex(images.float())


# ---------------------------------------------------------------------------------------------- consistency scenes


def disc_sphere(n: int = 2000, radius: float = 0.35) -> GaussianSet:
    """Opaque flat discs tangent to a sphere (a Fibonacci lattice), smoothly varying colours."""
    i = torch.arange(n, dtype=torch.float32) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    normal = torch.stack([torch.sin(phi) * torch.cos(theta), torch.cos(phi), torch.sin(phi) * torch.sin(theta)], -1)
    z = torch.tensor([0.0, 0.0, 1.0]).expand_as(normal)
    axis = torch.linalg.cross(z, normal)
    angle = torch.atan2(axis.norm(dim=-1, keepdim=True), normal[:, 2:])
    quats = torch.cat([torch.cos(angle / 2), torch.nn.functional.normalize(axis, dim=-1) * torch.sin(angle / 2)], -1)
    spacing = radius * (4 * math.pi / n) ** 0.5
    scales = torch.tensor([spacing, spacing, 0.02 * spacing]).expand(n, 3)
    means = normal * radius
    rgb = 0.5 + 0.35 * torch.stack([torch.sin(3 * normal[:, 0]), torch.cos(2 * normal[:, 1]),
                                    torch.sin(2 * normal[:, 2] + 1)], -1)
    return GaussianSet.from_activated(means, rgb, torch.full((n,), 0.999), scales, quats)


def floaters(n: int = 3000, seed: int = 0) -> GaussianSet:
    """Random semi-transparent round Gaussians filling the head's box, random colours."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 0.7
    scales = (0.01 + 0.03 * torch.rand(n, 1, generator=g)).expand(n, 3)
    return GaussianSet.from_activated(means, torch.rand(n, 3, generator=g), 0.1 + 0.3 * torch.rand(n, generator=g),
                                      scales)


def test_yaw_offset_adds_to_orbit_yaw():
    cams = orbit_cameras(torch.tensor([0.1, -0.4]), torch.tensor([0.05, 0.2]))
    turned = yaw_offset_cameras(cams, 20.0)
    expected = orbit_cameras(torch.tensor([0.1, -0.4]) + math.radians(20.0), torch.tensor([0.05, 0.2]))
    torch.testing.assert_close(turned.cam2world, expected.cam2world, atol=1e-5, rtol=0)


def test_depth_moments_mean_is_the_rendered_depth():
    scene = floaters(800)
    cam = orbit_cameras(0.3, 0.1)
    mean, std = depth_moments(scene, cam, 32, backend="torch")
    out = render(scene, cam, 32, 32, mode="rgb+depth", backend="torch")
    torch.testing.assert_close(mean, out.depth[..., 0], atol=2e-4, rtol=0)
    assert (std >= 0).all() and float(std[out.alpha[..., 0] > 0.95].mean()) > 0.02


def test_reprojection_consistency_separates_an_opaque_surface_from_floaters():
    cam_a = orbit_cameras(0.3, 0.1)
    cam_b = yaw_offset_cameras(cam_a, 20.0)
    surface = reprojection_consistency(disc_sphere(), cam_a, cam_b, RES, backend="torch")
    fog = reprojection_consistency(floaters(), cam_a, cam_b, RES, backend="torch")
    assert surface.psnr > 25.0 and surface.depth_agreement > 0.98 and surface.coverage > 0.8
    assert surface.depth_spread < 0.02
    assert fog.psnr < surface.psnr - 6.0, (fog.psnr, surface.psnr)
    assert fog.depth_agreement < 0.9 and fog.coverage < surface.coverage - 0.15
    assert fog.depth_spread > 3 * surface.depth_spread
    # Seen from the same camera, everything is consistent.
    same = reprojection_consistency(floaters(), cam_a, cam_a, RES, backend="torch")
    assert same.psnr > 60 and same.depth_agreement == 1.0
    assert set(surface.as_dict()) == {"psnr", "l1", "coverage", "depth_agreement", "depth_spread", "compared_pixels"}


def test_an_empty_scene_gives_nan_not_an_error():
    empty = GaussianSet.empty()
    r = reprojection_consistency(empty, orbit_cameras(0.0), orbit_cameras(0.3), 16, backend="torch")
    assert r.compared == 0 and math.isnan(r.psnr) and r.coverage == 0.0


# ---------------------------------------------------------------------------------------------- ground truth


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset

    out = tmp_path_factory.mktemp("metrics") / "ds"
    write_dataset(DatasetConfig(out=out, num_identities=3, views_per_identity=2, extra_side_views=0, resolution=32,
                                seed=5, test_fraction=0.34, workers=1), progress=False)
    return out


def test_gt_consistency_of_the_ground_truth_is_exact_and_a_changed_scene_is_not(small_dataset):
    (ident,) = load_eval_split(small_dataset)
    assert ident.identity == 2 and ident.images.shape == (10, 32, 32, 3) and ident.masks.shape == (10, 32, 32)
    exact = gt_consistency(ident.gt, ident.cameras, ident.images, ident.masks, backend="torch")
    assert exact.psnr == math.inf and exact.psnr_mask == math.inf and exact.l1 == 0.0
    g = ident.gt
    shifted = GaussianSet(g.means + torch.tensor([0.02, 0.0, 0.0]), g.quats, g.log_scales, g.opacity_logits, g.sh)
    off = gt_consistency(shifted, ident.cameras, ident.images, ident.masks, backend="torch")
    assert 10.0 < off.psnr < 40.0 and 10.0 < off.psnr_mask < 40.0 and len(off.per_view_psnr) == 10
    # Seen along the shift (the profiles) the head moves in depth only: those views suffer least.
    assert min(off.per_view_psnr[3], off.per_view_psnr[4]) > max(off.per_view_psnr[0], off.per_view_psnr[7])
    with pytest.raises(ValueError, match="batch shape"):
        gt_consistency(g, ident.cameras[:3], ident.images, backend="torch")


# ---------------------------------------------------------------------------------------------- generator + CLI


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(PRESETS["tiny"]).eval()


def test_generator_sampler_is_seeded_and_fid3d_runs(tiny_generator):
    labels = orbit_cameras(torch.linspace(-0.5, 0.5, 7)).to_label()
    a = generator_sampler(tiny_generator, labels, 16, seed=3)(4)
    b = generator_sampler(tiny_generator, labels, 16, seed=3)(4)
    assert a.dtype == torch.uint8 and a.shape == (4, 3, 16, 16)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    extractor = stand_in_features(dim=16)
    dataset = ListDataset(blob_images(12, seed=0, size=16), "unused")
    value = fid3d(dataset, generator_sampler(tiny_generator, labels, 16, protocol="fid3d"), extractor, num_gen=12,
                  batch=6)
    assert math.isfinite(value)
    assert math.isfinite(fid(dataset, generator_sampler(tiny_generator, labels, 16), extractor, num_gen=12, batch=6))
    with pytest.raises(ValueError, match="protocol"):
        generator_sampler(tiny_generator, labels, 16, protocol="kid")


def test_generator_consistency_runs(tiny_generator):
    r = generator_consistency(tiny_generator, num_scenes=2, resolution=24, batch=2)
    # a random-weight generator makes mostly translucent fog: whatever was compared, the summary must agree
    assert r.spread_hist is not None and r.compared <= r.candidates
    assert (r.compared == 0) == math.isnan(r.psnr)


def test_cli_reports_missing_inception_and_bad_arguments(tmp_path, empty_caches, capsys, tiny_generator,
                                                         small_dataset):
    net = tmp_path / "G.pkl"
    save_generator(tiny_generator, net)
    assert cli_main(["--network", str(net), "--data", str(small_dataset), "--metrics", "fid2k_full"]) == 3
    err = capsys.readouterr().err
    assert "error:" in err and INCEPTION_FILE in err and str(tmp_path / "torch_home") in err
    assert cli_main(["--network", str(net), "--metrics", "kid50k"]) == 2
    assert "unknown metric 'kid50k'" in capsys.readouterr().err
    assert cli_main(["--network", str(net), "--metrics", "fid2k"]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_cli_writes_json_lines(tmp_path, capsys, tiny_generator, small_dataset):
    net = tmp_path / "G.pkl"
    save_generator(tiny_generator, net)
    out = tmp_path / "metrics.jsonl"
    argv = ["--network", str(net), "--data", str(small_dataset), "--metrics", "fid8_full", "consistency",
            "--features", "stand-in", "--consistency-scenes", "1", "--resolution", "16", "--batch", "4",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--workers", "0"]
    assert cli_main(argv) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert [r["metric"] for r in lines] == ["fid8_full", "consistency"]
    assert set(lines[0]["results"]) == {"fid8_full@stand-in"} and lines[0]["features"].startswith("stand-in")
    assert "consistency_psnr" in lines[1]["results"] and lines[1]["features"] is None
    assert [json.loads(s) for s in out.read_text().splitlines()] == lines
