"""The default model v2 plan (docs/default-model-v2.md): the cpu256 preset's budget, and that every command of
tools/train_default_model_v2.sh is accepted by the CLI it calls, with the recipe the page describes."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
import tyro

from core.generator import PRESETS, Generator
from training.metrics.__main__ import MetricsConfig, metric_names
from training.options import TrainOptions
from training.synthetic_heads.config import DatasetConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "train_default_model_v2.sh"


def test_cpu256_preset_keeps_the_cpu_viewer_budget_and_the_file_size():
    v1, v2 = PRESETS["cpu128"], PRESETS["cpu256"]
    assert v2.resolution == 256
    # The CPU viewer's frame cost is per splat (viewer_fps_cpu_512 was measured with cpu128's 21,760).
    assert v2.num_gaussians <= v1.num_gaussians == 21_760
    G = Generator(v2)
    params = sum(p.numel() for p in G.parameters())
    assert params * 2 < 25e6 * 0.9  # float16 weights, with room for the file's metadata, under 25 MB
    with torch.no_grad():
        out = G(torch.randn(1, v2.z_dim))
    assert out.gaussians.means.shape == (1, 21_760, 3)


def dry_run(*args: str, **env: str) -> list[str]:
    if os.name == "nt":
        pytest.skip("bash script")
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY_RUN": "1", **env})
    return shlex.split(done.stdout)


def module_args(argv: list[str], module: str) -> list[str]:
    i = argv.index(module)
    assert argv[i - 1] == "-m"
    return argv[i + 1:]


def test_every_command_of_the_script_parses_with_the_recipe_of_the_docs():
    data = tyro.cli(DatasetConfig, args=module_args(dry_run("data"), "training.synthetic_heads"))
    assert (data.resolution, data.full_yaw_fraction, data.device) == (256, 0.5, "cuda")
    assert data.num_test >= 16 and data.num_images == 7936 * 6  # gt_fit's 16 heads are held out
    train = tyro.cli(TrainOptions, args=module_args(dry_run("train", "8"), "training"))
    assert (train.preset, train.resolution, train.batch, train.num_views) == ("cpu256", 256, 32, 4)
    assert train.d_channel_base == 16384 and train.stop_after_minutes == 8 and train.data == str(data.out)
    assert (train.d_bf16_blocks, train.channels_last, train.batch_d_calls, train.g_cuda_graphs) == (
        4, True, True, True)  # the cpu256 recipe
    assert train.gamma == pytest.approx(0.0002 * 256 ** 2 / 32, rel=0.03)
    resume = tyro.cli(TrainOptions, args=module_args(dry_run("resume", "7", "runs/x/snapshot"), "training"))
    assert resume.resume == "runs/x/snapshot" and resume.stop_after_minutes == 7
    two = dry_run("train", "5", GPUS="2")
    assert two[:3] == ["torchrun", "--standalone", "--nproc_per_node"]
    assert tyro.cli(TrainOptions, args=module_args(two, "training")).batch_gpu == 16
    extra = tyro.cli(TrainOptions, args=module_args(dry_run("train", "5", EXTRA_ARGS="--seed 3"), "training"))
    assert extra.seed == 3
    metrics = tyro.cli(MetricsConfig, args=module_args(dry_run("metrics", "m.safetensors"), "training.metrics"))
    assert metric_names(metrics.metrics) == ("gt_fit", "consistency", "floaters") and metrics.resolution == 256
    from training.directions.evaluate import EvaluateOptions
    from training.directions.pipeline import DirectionsOptions

    dirs = tyro.cli(DirectionsOptions, args=module_args(dry_run("directions", "out/v2.safetensors"),
                                                         "training.directions"))
    assert dirs.data == data.out and dirs.classifier_resolution == 128
    report = tyro.cli(EvaluateOptions, args=module_args(dry_run("editing", "out/v2.safetensors", "r.md"),
                                                         "training.directions.evaluate"))
    assert Path(report.classifier) == dirs.classifier_out_path  # editing uses the classifier directions saved
    assert str(report.out) == "r.md"


def test_out_hands_over_the_newest_run(tmp_path):
    for run in ("00000", "00001", "00002"):
        (tmp_path / f"{run}-cpu256-heads256-default-v2").mkdir()
    for run in ("00000", "00001"):
        (tmp_path / f"{run}-cpu256-heads256-default-v2" / "network-snapshot-000040.safetensors.index.json").touch()
    argv = dry_run("out", "3", OUTDIR=str(tmp_path), OUT="/o", COMPACT_OUT="/c")  # 00002 has no snapshot yet
    assert argv[1:] == ["tools/snapshot_handover.py", "out", str(tmp_path / "00001-cpu256-heads256-default-v2"),
                        "/o", "--call", "3", "--compact-dir", "/c"]


def dry_lines(*args: str, **env: str) -> tuple[int, list[list[str]]]:
    """The script's exit status and the commands it would run (DRY_RUN), one per line."""
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DRY_RUN": "1", **env})
    return done.returncode, [shlex.split(line) for line in done.stdout.splitlines()]


def test_lease_makes_missing_data_then_trains_resumes_and_hands_over(tmp_path):
    runs, data, snap, compact = tmp_path / "runs", tmp_path / "heads", tmp_path / "snap", tmp_path / "compact"
    runs.mkdir()
    env = dict(OUTDIR=str(runs), DATA=str(data), HANDOVER=str(snap), COMPACT=str(compact), OUT="/o",
               COMPACT_OUT="/c")
    # a fresh machine: the data, then a new run; `out 0` then finds no run (a dry run trains nothing) and fails
    status, (data_line, train_line) = dry_lines("lease", "9", **env)
    assert status == 2 and "training.synthetic_heads" in data_line
    opts = tyro.cli(TrainOptions, args=module_args(train_line, "training"))
    assert opts.resume is None and opts.stop_after_minutes == pytest.approx(9, abs=0.05)
    # the data exist and a compact hand-over came from the repository: expand it, resume from the result
    data.mkdir()
    (data / "dataset.json").write_text("{}")
    compact.mkdir()
    (compact / "network-snapshot-000152.safetensors.index.json").write_text("{}")
    status, (expand_line, train_line) = dry_lines("lease", "9", **env)
    assert expand_line[1:] == ["tools/snapshot_handover.py", "expand",
                               str(compact / "network-snapshot-000152.safetensors.index.json"), str(snap)]
    assert tyro.cli(TrainOptions, args=module_args(train_line, "training")).resume == str(
        snap / "network-snapshot-000152.safetensors.index.json")
    # full snapshots gathered into HANDOVER win over the compact one: resume from the newest
    snap.mkdir()
    for kimg in ("000200", "000100"):
        (snap / f"network-snapshot-{kimg}.safetensors.index.json").write_text("{}")
    status, (train_line,) = dry_lines("lease", "9", **env)
    assert tyro.cli(TrainOptions, args=module_args(train_line, "training")).resume == str(
        snap / "network-snapshot-000200.safetensors.index.json")
    # a run killed before its first snapshot is passed over
    (runs / "00000-cpu256-heads256-default-v2").mkdir()
    status, (train_line,) = dry_lines("lease", "9", **env)
    assert tyro.cli(TrainOptions, args=module_args(train_line, "training")).resume == str(
        snap / "network-snapshot-000200.safetensors.index.json")
    # a run on this machine (from an earlier call of the lease) wins, and its snapshot goes out
    (runs / "00000-cpu256-heads256-default-v2" / "network-snapshot-000210.safetensors.index.json").touch()
    status, (train_line, out_line) = dry_lines("lease", "9", **env)
    assert status == 0
    assert tyro.cli(TrainOptions, args=module_args(train_line, "training")).resume == str(
        runs / "00000-cpu256-heads256-default-v2")
    assert out_line[1:] == ["tools/snapshot_handover.py", "out", str(runs / "00000-cpu256-heads256-default-v2"),
                            "/o", "--call", "0", "--compact-dir", "/c"]


def test_resume_and_export_without_a_run_fail_clearly(tmp_path):
    for args in (("resume", "5"), ("export", "x.safetensors"), ("out", "0")):
        done = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "DRY_RUN": "1", "OUTDIR": str(tmp_path)})
        assert done.returncode == 2 and "no run in" in done.stderr


def test_grid_tool_puts_models_side_by_side_for_each_psi(tmp_path):
    import sys

    import numpy as np
    from PIL import Image

    from core.model_files import save_generator

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import default_model_grid
    finally:
        sys.path.remove(str(ROOT / "tools"))
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"g{seed}.safetensors")
        save_generator(Generator(PRESETS["tiny"]).eval(), paths[-1])
    out = tmp_path / "grid.png"
    argv = [str(p) for p in paths] + [str(out), "--rows", "2", "--yaws", "0", "90", "180", "--psi", "0.7", "1.0",
                                       "--resolution", "24"]
    assert default_model_grid.main(argv) == 0
    images = {p: np.asarray(Image.open(tmp_path / p)) for p in ("grid-psi0.7.png", "grid-psi1.0.png")}
    for image in images.values():
        assert image.shape == (2 * 24, (3 + 1 + 3) * 24, 3)
        assert (image[:, 3 * 24:4 * 24] == 255).all()  # the blank cell between the two models
    image = images["grid-psi0.7.png"]
    assert not np.array_equal(image[:, :3 * 24], image[:, 4 * 24:])  # two different models


def test_report_hands_out_the_newest_runs_log_and_its_ema_generator_in_pieces(tmp_path):
    run = tmp_path / "00000-cpu256-heads256-default-v2"
    run.mkdir()
    (run / "network-snapshot-000040.safetensors.index.json").touch()
    status, (report, export, split) = dry_lines("report", OUTDIR=str(tmp_path), OUT="/o", COMPACT_OUT="/c")
    assert status == 0
    assert report[1:] == ["tools/snapshot_handover.py", "report", str(run), "/o"]
    assert export[1:] == ["tools/export_generator.py", str(run), "/c/ema.safetensors", "--dtype", "float16",
                          "--overwrite"]
    assert split[:3] == ["split", "-b", "15m"] and split[3:] == ["/c/ema.safetensors", "/o/ema.safetensors.part-"]
    # 15 MiB pieces fit the device's 16 MiB file limit
    status, _ = dry_lines("report", OUTDIR=str(tmp_path / "none"), OUT="/o")
    assert status == 2


def test_unpack_stages_the_newest_hand_over_from_history(tmp_path):
    """`unpack` finds the commit that added the newest hand-over (the next commit took it out of the tree again)
    and splits it into carry folders that gather back into the same snapshot."""
    import shutil
    import sys

    from core.tensor_file_reader import open_tensor_file
    from core.tensor_files import write_tensor_file

    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    for name in ("train_default_model_v2.sh", "snapshot_handover.py"):
        shutil.copy(ROOT / "tools" / name, repo / "tools" / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    g = torch.Generator().manual_seed(0)
    snapshots = {}
    for kimg in (40, 80):  # two hand-overs, each added and then taken out of the tree
        tensors = {f"t{i}": torch.randn(4000, generator=g) for i in range(6)}
        (repo / "handover" / "v2").mkdir(parents=True, exist_ok=True)
        index = write_tensor_file(repo / "handover" / "v2" / f"network-snapshot-{kimg:06d}.safetensors", tensors,
                                  {"kimg": kimg}, max_part_bytes=20 << 10)
        snapshots[kimg] = (index.name, tensors)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", f"handover {kimg}"], cwd=repo, check=True)
        subprocess.run([*git, "rm", "-rq", "handover"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "out of the tree"], cwd=repo, check=True)
    env = {**os.environ, "PY": sys.executable, "PYTHONPATH": str(ROOT), "CARRY_MIB": "0.06"}
    done = subprocess.run(["bash", "tools/train_default_model_v2.sh", "unpack"], cwd=repo, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    folders = sorted((repo / ".handover" / "in").iterdir())
    assert len(folders) >= 2  # CARRY_MIB splits the ~100 KiB snapshot
    back = repo / "back"
    subprocess.run([sys.executable, "tools/snapshot_handover.py", "gather", str(back), *map(str, folders)],
                   cwd=repo, check=True, env=env, capture_output=True)
    name, tensors = snapshots[80]  # the newest one
    got = open_tensor_file(back / name).read()
    assert got.keys() == tensors.keys() and all(torch.equal(got[k], tensors[k]) for k in tensors)
    again = subprocess.run(["bash", "tools/train_default_model_v2.sh", "unpack"], cwd=repo, capture_output=True,
                           text=True, env=env)
    assert again.returncode == 2 and "remove it first" in again.stderr  # never over an earlier unpack


def test_ship_makes_the_model_the_default_then_its_sliders_and_tables_on_the_cpu(tmp_path):
    from training.directions.evaluate import EvaluateOptions
    from training.directions.pipeline import DirectionsOptions

    if os.name == "nt":
        pytest.skip("bash script")
    model = tmp_path / "v2_k.safetensors"
    model.write_bytes(b"a generator file")
    done = subprocess.run(["bash", str(SCRIPT), "ship", str(model), "out/r.md"], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY_RUN": "1", "LABELS": str(tmp_path / "labels")})
    cp, labels, dirs, editing, sliders = (shlex.split(line) for line in done.stdout.strip().splitlines())
    assert cp == ["cp", str(model), "assets/default_model.safetensors"]
    from viewer.config import DEFAULT_MODEL
    assert ROOT / cp[2] == DEFAULT_MODEL  # what run_viewer.py opens
    labelled = tyro.cli(DatasetConfig, args=module_args(labels, "training.synthetic_heads"))
    assert labelled.out == tmp_path / "labels" and labelled.device == "cpu" and labelled.num_images == 5000
    d = tyro.cli(DirectionsOptions, args=module_args(dirs, "training.directions"))
    assert Path(d.model) == Path(cp[2]) and d.data == labelled.out and d.device == "cpu"
    e = tyro.cli(EvaluateOptions, args=module_args(editing, "training.directions.evaluate"))
    assert Path(e.model) == Path(cp[2]) and Path(e.classifier) == d.classifier_out_path
    assert str(e.out) == "out/r.md"
    assert sliders[1:] == ["tools/slider_figure.py", cp[2], "out/r.sliders.png", "--match"]


def test_ship_refuses_a_missing_model_and_leaves_the_default_alone(tmp_path):
    if os.name == "nt":
        pytest.skip("bash script")
    shipped = ROOT / "assets" / "default_model.safetensors"
    before = shipped.stat().st_mtime_ns
    cases = [([str(tmp_path / "nope.safetensors"), "r.md"], "no such generator file"),
             ([str(tmp_path / "x")], "report .md"), ([], "generator file")]
    for args, message in cases:
        done = subprocess.run(["bash", str(SCRIPT), "ship", *args], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "LABELS": str(tmp_path / "labels")})  # not a dry run
        assert done.returncode != 0 and done.stdout == "" and message in done.stderr, (args, done.stderr)
    assert shipped.stat().st_mtime_ns == before and not (tmp_path / "labels").exists()
