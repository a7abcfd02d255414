"""training/recipes.py: a recipe reaches TrainOptions the same way from Python and from the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import tyro

from training.options import TrainOptions
from training.recipes import CPU128, RECIPES, TrainRecipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_cli_args_parse_to_the_same_options(name):
    recipe = RECIPES[name]
    from_cli = tyro.cli(TrainOptions, args=["--data", "d", *recipe.cli_args()])
    assert from_cli == TrainOptions(data="d", **recipe.overrides())
    assert from_cli != TrainOptions(data="d")  # the recipe changes something


def test_cpu128_is_the_default_model_recipe():
    opts = TrainOptions(data="d", **CPU128.overrides())
    assert (opts.preset, opts.resolution, opts.batch, opts.batch_gpu, opts.num_views) == ("cpu128", 128, 32, 32, 4)
    assert (opts.gamma, opts.blur_fade_kimg_value, opts.precision) == (0.25, 40.0, "tf32")
    # the discriminator measured on 2026-12-02 (docs/training.md "Training speed")
    assert (opts.d_channel_base, opts.d_bf16_blocks, opts.channels_last, opts.batch_d_calls) == (16384, 4, True, True)
    assert CPU128.image_resolution() == 128


def test_bool_fields_become_flags():
    on = TrainRecipe(preset="tiny", batch=4, batch_gpu=4, channels_last=True, batch_d_calls=False)
    assert on.cli_args()[-2:] == ["--channels-last", "--no-batch-d-calls"]
    opts = tyro.cli(TrainOptions, args=["--data", "d", *on.cli_args()])
    assert (opts.channels_last, opts.batch_d_calls) == (True, False)


def test_unset_fields_keep_the_training_defaults():
    recipe = TrainRecipe(preset="tiny", batch=4, batch_gpu=4)
    assert recipe.overrides() == {"preset": "tiny", "batch": 4, "batch_gpu": 4, "num_views": 4}
    assert recipe.image_resolution() == 32  # the preset's
    assert TrainOptions(data="d", **recipe.overrides()).gamma == TrainOptions(data="d").gamma


def test_command_prints_one_option_a_line():
    out = subprocess.run([sys.executable, "-m", "training.recipes", "cpu128"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == CPU128.cli_args()
    bad = subprocess.run([sys.executable, "-m", "training.recipes", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "cpu128" in bad.stderr


def test_cpu128_discriminator_options_train_on_the_cpu(tmp_path, capsys):
    """``python -m training`` with the recipe's options, shrunk to the tiny preset, on the CPU: bf16 D blocks
    run under CPU autocast, channels-last is a CUDA-only layout and left off there."""
    from bench.train_speed import noise_dataset
    from core.runs import OPTIONS_FILE, read_stats
    from training.__main__ import main

    data = noise_dataset(tmp_path / "data", 32, n=8)
    tiny = ["--preset", "tiny", "--resolution", "32", "--batch", "4", "--batch-gpu", "4", "--num-views", "2",
            "--d-channel-base", "512", "--d-channel-max", "32", "--knn-k", "8", "--kimg", "0.008",
            "--tick-kimg", "0.004", "--snap-kimg", "1", "--image-snap-kimg", "1", "--workers", "0",
            "--device", "cpu"]
    assert main(["--data", str(data), "--outdir", str(tmp_path / "runs"), *CPU128.cli_args(), *tiny]) == 0
    run = next((tmp_path / "runs").iterdir())
    saved = json.loads((run / OPTIONS_FILE).read_text())["options"]
    assert (saved["d_bf16_blocks"], saved["channels_last"], saved["batch_d_calls"]) == (4, True, True)
    ticks = read_stats(run)
    assert len(ticks) == 2 and all(math.isfinite(t[k]) for t in ticks for k in ("G_adv", "D_real", "D_fake"))
