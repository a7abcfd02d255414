"""The training loop on the CPU: a tiny run, exact resume (also after a real kill), NaN stop, 2-rank gloo."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.camera import orbit_cameras
from core.snapshots import load_snapshot
from core.model_files import load_generator
from training.loop import TrainingStopped, train
from training.options import TrainOptions
from core.runs import latest_snapshot, list_snapshots

ROOT = Path(__file__).resolve().parents[2]
RES = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """12 small images of coloured blobs with EG3D labels (the loop does not care what they show)."""
    root = tmp_path_factory.mktemp("data")
    g = np.random.default_rng(0)
    labels = orbit_cameras(torch.linspace(-0.6, 0.6, 12), 0.1).to_label()
    entries = []
    for i in range(12):
        img = np.full((RES, RES, 3), 255, np.uint8)
        y, x = np.mgrid[:RES, :RES]
        blob = (x - 16 - 4 * np.sin(i)) ** 2 + (y - 16) ** 2 < 60 + 5 * i
        img[blob] = g.integers(0, 255, 3)
        name = f"{i:05d}.png"
        Image.fromarray(img).save(root / name)
        entries.append([name, labels[i].tolist()])
    (root / "dataset.json").write_text(json.dumps({"labels": entries}))
    return root


@pytest.fixture(autouse=True)
def restore_determinism():
    """``deterministic=True`` switches PyTorch's global mode on; put it back for the other tests."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def tiny_options(data: Path, outdir: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), outdir=str(outdir), preset="tiny", resolution=RES, batch=4, batch_gpu=2,
                kimg=0.016, tick_kimg=0.004, snap_kimg=0.008, image_snap_kimg=0.008, num_views=2,
                d_channel_base=512, d_channel_max=32, workers=0, device="cpu", r1_interval=2, knn_k=8,
                deterministic=True)
    base.update(kw)
    return TrainOptions(**base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    snap = load_snapshot(path)
    return {f"{m}.{k}": v for m in ("G", "G_ema", "D") for k, v in snap.modules[m].items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_tiny_run_writes_a_complete_run_directory(dataset, tmp_path):
    run = train(tiny_options(dataset, tmp_path), progress=False)
    names = {p.name for p in run.iterdir()}
    assert {"options.json", "log.txt", "stats.jsonl", "fakes_init.png", "fakes000000.008.png", "fakes000000.016.png",
            "network-snapshot-000000.008.safetensors", "network-snapshot-000000.016.safetensors"} <= names
    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [t["kimg"] for t in ticks] == [0.004, 0.008, 0.012, 0.016]
    assert all(np.isfinite(t[k]) for t in ticks for k in ("G_adv", "D_real", "D_fake", "sec_per_kimg"))
    assert any(t["D_r1"] is not None and t["D_r1"] > 0 for t in ticks)
    assert any(t["D_r1"] is None for t in ticks)  # ticks without an R1 step report none (not a diluted mean)
    opts = json.loads((run / "options.json").read_text())
    assert opts["options"]["preset"] == "tiny" and opts["generator"]["num_points"] == 64
    G = load_generator(run / "network-snapshot-000000.016.safetensors").generator  # the EMA generator
    with torch.no_grad():
        G(torch.randn(1, G.config.z_dim)).gaussians.validate()
    grid = np.asarray(Image.open(run / "fakes000000.016.png"))
    assert grid.shape == (4 * RES, 5 * RES, 3) and grid.std() > 1
    # training changed the networks
    first, last = weights(run / "network-snapshot-000000.008.safetensors"), weights(run / "network-snapshot-000000.016.safetensors")
    assert any(not torch.equal(first[k], last[k]) for k in first if k.startswith("D."))


@pytest.mark.parametrize("part_mib", [None, 0.25], ids=["one-file", "sharded"])
def test_resume_continues_exactly(dataset, tmp_path, part_mib):
    full = train(tiny_options(dataset, tmp_path / "full"), progress=False)
    half = train(tiny_options(dataset, tmp_path / "split", kimg=0.008, snapshot_max_part_mib=part_mib), progress=False)
    if part_mib:  # parts of at most 0.25 MiB plus an index
        parts = list(half.glob("network-snapshot-000000.008-*-of-*.safetensors"))
        assert len(parts) > 3 and all(p.stat().st_size <= 0.25 * 2**20 for p in parts)
        assert latest_snapshot(half).name == "network-snapshot-000000.008.safetensors.index.json"
    resumed = train(tiny_options(dataset, tmp_path / "split", resume=str(half), snapshot_max_part_mib=part_mib),
                    progress=False)
    assert resumed == half  # continued in the same run directory
    assert_same(weights(full / "network-snapshot-000000.016.safetensors"), weights(latest_snapshot(resumed)))
    snap = load_snapshot(latest_snapshot(resumed))
    from training.loop import TrainingProgress

    assert TrainingProgress.from_dict(snap.training["progress"]) == TrainingProgress(16, 4, 16, 1)
    assert "exp_avg" not in snap.optimizers["G"]["state"][0]  # beta1 = 0: the first moment is not stored
    assert len(snap.training["rng"]) == 1 and snap.training["state"]["blur"]["sigma"] > 0


def test_a_copied_snapshot_continues_the_run_on_another_machine(dataset, tmp_path):
    """A run stopped by its time limit; only its newest snapshot's files cross to "another machine" (a folder
    named like the run directory); ``python -m training --resume SNAPSHOT`` with no other flag continues it
    there with the run's own options and ends exactly as the uninterrupted run."""
    import shutil

    from core.runs import snapshot_files
    from training.__main__ import main

    full = train(tiny_options(dataset, tmp_path / "full"), progress=False)
    first = train(tiny_options(dataset, tmp_path / "machine1", snapshot_max_part_mib=0.25, stop_after_minutes=0.0),
                  progress=False)
    assert latest_snapshot(first).name == "network-snapshot-000000.004.safetensors.index.json"
    carried = tmp_path / "machine2" / first.name
    carried.mkdir(parents=True)
    for f in snapshot_files(latest_snapshot(first)):
        shutil.copy(f, carried / f.name)
    assert main(["--resume", str(carried / latest_snapshot(first).name)]) == 0
    log = (carried / "log.txt").read_text()
    assert "resuming" in log and "done: 0.016 kimg" in log
    assert_same(weights(full / "network-snapshot-000000.016.safetensors"), weights(latest_snapshot(carried)))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(dataset, tmp_path):
    reference = train(tiny_options(dataset, tmp_path / "ref", kimg=0.032, snap_kimg=0.008), progress=False)
    outdir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "training", "--data", str(dataset), "--outdir", str(outdir), "--preset", "tiny",
           "--resolution", str(RES), "--batch", "4", "--batch-gpu", "2", "--kimg", "0.032", "--tick-kimg", "0.004",
           "--snap-kimg", "0.008", "--image-snap-kimg", "0.008", "--num-views", "2", "--d-channel-base", "512",
           "--d-channel-max", "32", "--workers", "0", "--device", "cpu", "--r1-interval", "2", "--knn-k", "8",
           "--deterministic"]
    # same thread count as this process: float reductions must run in the same order for bit equality
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900  # generous: on a loaded 2-core machine the first snapshot takes minutes
    run = None
    while time.time() < deadline:  # kill it as soon as its first snapshot exists
        runs = list(outdir.glob("*")) if outdir.exists() else []
        if runs and latest_snapshot(runs[0]) is not None:
            run = runs[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run is not None, "the run never wrote a snapshot"
    for snap in list_snapshots(run):
        load_snapshot(snap.path)  # every snapshot that exists is complete
    resumed = train(tiny_options(dataset, outdir, kimg=0.032, snap_kimg=0.008, resume=str(run)), progress=False)
    assert_same(weights(reference / "network-snapshot-000000.032.safetensors"), weights(resumed / "network-snapshot-000000.032.safetensors"))


def test_non_finite_loss_stops_the_run_and_keeps_the_snapshot(dataset, tmp_path, monkeypatch):
    import training.trainer as trainer

    real_knn = trainer.knn_loss
    calls = {"n": 0}

    def poisoned(anchors, k):
        calls["n"] += 1
        value = real_knn(anchors, k)
        return value * float("nan") if calls["n"] > 2 else value  # 2 G rounds per step: step 1 goes NaN

    monkeypatch.setattr(trainer, "knn_loss", poisoned)
    with pytest.raises(TrainingStopped, match="non-finite (loss|G gradients) at step 1"):
        train(tiny_options(dataset, tmp_path, snap_kimg=0.004), progress=False)
    run = next(tmp_path.iterdir())
    assert "non-finite" in (run / "error.txt").read_text()
    assert latest_snapshot(run).name == "network-snapshot-000000.004.safetensors"
    for name, t in weights(latest_snapshot(run)).items():
        assert torch.isfinite(t.float()).all(), name


def test_bad_options_and_data_are_refused(dataset, tmp_path):
    with pytest.raises(ValueError, match="multiple of batch_gpu"):
        train(tiny_options(dataset, tmp_path, batch=6, batch_gpu=4), progress=False)
    with pytest.raises(ValueError, match="32 px but training renders at 64"):
        train(tiny_options(dataset, tmp_path, resolution=64), progress=False)
    with pytest.raises(ValueError, match="unknown preset"):
        train(tiny_options(dataset, tmp_path, preset="huge"), progress=False)
    with pytest.raises(ValueError, match="kimg must be positive"):
        tiny_options(dataset, tmp_path, kimg=0)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        train(tiny_options(dataset, tmp_path, resume=str(tmp_path)), progress=False)


def test_cli_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for field in dataclasses.fields(TrainOptions):
        assert "--" + field.name.replace("_", "-") in out.stdout, field.name
    assert "default" in out.stdout


def _rank_worker(rank: int, world: int, store: str, data: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    grads = _one_g_step(data, rank, world)
    torch.save(grads, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _one_g_step(data: str, rank: int, world: int) -> dict[str, torch.Tensor]:
    """Gradients of G for a fixed batch of 4 in micro-batches of 2: one process accumulates both
    micro-batches (as the loop does), or each of 2 ranks takes one and the gradients are averaged."""
    from core.generator import PRESETS, Generator
    from training.discriminator import Discriminator, DiscriminatorConfig
    from training.distributed import average_gradients
    from training.losses import g_adversarial, render_for_d

    torch.manual_seed(0)
    G = Generator(PRESETS["tiny"])
    D = Discriminator(DiscriminatorConfig(resolution=RES, channel_base=512, channel_max=32))
    z = torch.randn(4, G.config.z_dim, generator=torch.Generator().manual_seed(1))
    labels = orbit_cameras(torch.tensor([-0.5, -0.1, 0.2, 0.6]), 0.1).to_label()
    rounds = 2 // world
    for r in range(rounds):
        sl = slice((rank * rounds + r) * 2, (rank * rounds + r + 1) * 2)
        out = G(z[sl])
        imgs = render_for_d(out.gaussians, labels[sl, None], RES, False)[:, 0]
        (g_adversarial(D(imgs, labels[sl])).mean() / rounds).backward()
    average_gradients(G, world)
    return {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}


def test_two_gloo_ranks_give_the_same_gradients_as_one_process(dataset, tmp_path):
    import torch.multiprocessing as mp

    single = _one_g_step(str(dataset), 0, 1)
    store = tmp_path / "store"  # a file store: no TCP port to collide with anything
    mp.spawn(_rank_worker, args=(2, str(store), str(dataset), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert r0.keys() == single.keys()
    for k in single:
        assert torch.equal(r0[k], r1[k]), k  # ranks stay in sync
        torch.testing.assert_close(r0[k], single[k], atol=1e-6, rtol=1e-4)
