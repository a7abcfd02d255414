"""training/recipes.py: a recipe reaches TrainOptions the same way from Python and from the command line."""

from __future__ import annotations

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
    assert CPU128.image_resolution() == 128


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
