"""The training set-ups bench/train_profile.py and bench/train_quality.py compare: recipes, the cumulative D/G
variants, and the TrainOptions of one (recipe, variant), which also works on an older checkout (options it lacks
are left out when the variant keeps their old behaviour; otherwise the variant is unavailable there).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from training.recipes import CPU128, TrainRecipe

RECIPES: dict[str, TrainRecipe] = {
    # the default model's (tools/train_default_model.sh)
    "cpu128": CPU128,
    # bench/train_speed.py's cgs512 figure: batch 8 on one GPU, 4 views, TF32, official gamma and blur
    "cgs512": TrainRecipe(preset="cgs512", batch=8, batch_gpu=8, num_views=4, precision="tf32"),
    # a CPU smoke test of this script
    "tiny": TrainRecipe(preset="tiny", resolution=32, batch=4, batch_gpu=4, num_views=2, precision="tf32",
                        d_channel_base=512, d_channel_max=32, knn_k=8),
}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CUDA = DEVICE == "cuda"
# Every variant names all five D settings, so that it means the same whatever the recipe sets (cpu128 has
# had the bf16-cb16k D since 2026-12-02); the legacy values are the code before the speed work.
LEGACY = dict(batch_d_calls=False, channels_last=False, d_bf16_blocks=0, d_channel_base=32768, d_blur="conv")
# The default-model recipe's own D settings (training/recipes.py owns them) with the blurs as depthwise
# convolutions, as the recipe had them until it took d_blur "matmul" (2026-12-02): the "-matmul" variant is
# the recipe now.
RECIPE_D = {**{k: getattr(CPU128, k) for k in ("batch_d_calls", "channels_last", "d_bf16_blocks", "d_channel_base")},
            "d_blur": "conv"}
VARIANTS = {
    "legacy": LEGACY,
    "batched": {**LEGACY, "batch_d_calls": True},
    "nhwc": {**LEGACY, "batch_d_calls": True, "channels_last": True},
    "bf16-nchw": {**LEGACY, "batch_d_calls": True, "channels_last": False, "d_bf16_blocks": 4},
    "bf16": {**LEGACY, "batch_d_calls": True, "channels_last": True, "d_bf16_blocks": 4},
    "bf16-matmul": {**LEGACY, "batch_d_calls": True, "channels_last": True, "d_bf16_blocks": 4, "d_blur": "matmul"},
    "bf16-cb16k": RECIPE_D,
    "bf16-cb16k-gbf16": {**RECIPE_D, "precision": "bf16"},
    # the recipe's D with its [1, 3, 3, 1] blurs as pad + strided slices + adds instead of depthwise convs
    "bf16-cb16k-slices": {**RECIPE_D, "d_blur": "slices"},
    "bf16-cb16k-slices16": {**RECIPE_D, "d_blur": "slices_bf16"},  # the same, sums in bf16
    "bf16-cb16k-matmul": {**RECIPE_D, "d_blur": "matmul"},  # the blurs as banded-matrix products
}


def options_for(recipe: str, overrides: dict, data: Path, outdir: Path, **extra):
    """TrainOptions for ``recipe`` + ``overrides`` + ``extra``; None if this checkout lacks a needed option
    (one set to anything but the old behaviour)."""
    from training.options import TrainOptions

    fields = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
    kw = {**RECIPES[recipe].overrides(), **overrides, **extra}
    for k in list(kw):
        if k not in fields:
            if LEGACY.get(k, object()) != kw[k]:
                return None
            del kw[k]
    return TrainOptions(data=str(data), outdir=str(outdir), device=DEVICE, workers=4, seed=0, **kw)


def noise_dataset(root: Path, resolution: int, n: int = 64) -> Path:
    from bench.train_speed import noise_dataset as make

    return make(root, resolution, n)
