"""Named training recipes: the TrainOptions settings that make one documented set-up, defined once.

A recipe holds the settings of the model and its optimisation (preset, resolution, batch, views, R1 weight,
blur fade, precision, discriminator size and arithmetic); run length, logging intervals, workers and seed
stay with each caller. The benches build their TrainOptions from it (:meth:`TrainRecipe.overrides`), ``tools/train_default_model.sh`` passes it
to ``python -m training`` as command-line options (``python -m training.recipes cpu128`` prints them).

This module imports nothing from the rest of the project at import time, so that ``bench/train_profile.py``
can time an older checkout with it copied in (tools/train_speed_session.sh).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainRecipe:
    """TrainOptions settings; every field is a TrainOptions field, and ``None`` keeps TrainOptions' default.

    Attributes:
        preset: generator preset (core.generator.PRESETS).
        batch, batch_gpu: total batch and micro-batch per GPU (images).
        num_views: multi-view renders per generated scene.
        resolution: image resolution in pixels (None: the preset's).
        gamma: R1 weight; blur_fade_kimg: D-input blur fade length in kimg.
        precision: "fp32", "tf32" or "bf16".
        d_channel_base, d_channel_max: discriminator size; knn_k: KNN regularizer neighbours.
        d_bf16_blocks: the discriminator's highest-resolution blocks in bf16 autocast (CUDA and CPU).
        channels_last: NHWC discriminator activations (CUDA only; ignored on the CPU, same maths).
        batch_d_calls: one discriminator call per phase (same maths as one call per view).
        d_blur: how the discriminator computes its blurs (training.discriminator_conv.BLUR_IMPLS).
        g_cuda_graphs: replay the D step's generator forward from a CUDA graph (CUDA only; same arithmetic).
    """

    preset: str
    batch: int
    batch_gpu: int
    num_views: int = 4
    resolution: int | None = None
    gamma: float | None = None
    blur_fade_kimg: float | None = None
    precision: str | None = None
    d_channel_base: int | None = None
    d_channel_max: int | None = None
    knn_k: int | None = None
    d_bf16_blocks: int | None = None
    channels_last: bool | None = None
    batch_d_calls: bool | None = None
    d_blur: str | None = None
    g_cuda_graphs: bool | None = None

    def overrides(self) -> dict[str, Any]:
        """The TrainOptions fields this recipe sets (keyword arguments), ``None`` fields left out."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def image_resolution(self) -> int:
        """The resolution trained at in pixels: ``resolution``, else the preset's."""
        from core.generator import PRESETS

        return self.resolution or PRESETS[self.preset].resolution

    def cli_args(self) -> list[str]:
        """The same settings as ``python -m training`` options, e.g. ``["--preset", "cpu128", ...]``
        (a flag per bool: ``--channels-last`` / ``--no-channels-last``)."""
        args: list[str] = []
        for k, v in self.overrides().items():
            flag = k.replace("_", "-")
            if isinstance(v, bool):
                args.append(f"--{flag}" if v else f"--no-{flag}")
            else:
                args += [f"--{flag}", f"{v:g}" if isinstance(v, float) else str(v)]
        return args


# The default model (tools/train_default_model.sh, docs/training.md "The default model"): batch 32 in one
# micro-batch, 4 views, gamma 0.25 (R1 weight scales with resolution squared; 1.0 is the 512 px FFHQ value),
# the D-input blur fades over 40 kimg instead of 200 (a run of ~100-200 kimg), TF32 matmuls. The discriminator
# since 2026-12-02 (docs/training.md "Training speed"): channel_base 16384 (StyleGAN2-ADA's D below 256 px,
# a third of the FLOPs of 32768), its 4 highest-resolution blocks in bf16, NHWC activations, one D call per
# phase; the same 8-kimg run before and after: 142 -> 104 s (steady 10.5 -> 5.4 s/kimg, H200), SWD and
# reprojection consistency as good. Its [1, 3, 3, 1] blurs as banded-matrix products (d_blur "matmul", the
# same linear map): 5.85 -> 3.27 s/kimg after the D-input blur fade. The v1 model (84 kimg, 2026-11-21) was
# trained with the float32/TF32 D at channel_base 32768.
CPU128 = TrainRecipe(preset="cpu128", resolution=128, batch=32, batch_gpu=32, num_views=4, gamma=0.25,
                     blur_fade_kimg=40.0, precision="tf32", d_channel_base=16384, d_bf16_blocks=4,
                     channels_last=True, batch_d_calls=True, d_blur="matmul")

# The default model v2 (tools/train_default_model_v2.sh, docs/default-model-v2.md "Recipe"): preset cpu256 at
# 256 px, batch 32 in one micro-batch, 4 views; R1 gamma 0.4 (0.0002 * 256^2 / 32, StyleGAN2-ADA's heuristic);
# the D-input blur fades over 100 kimg; the cpu128 recipe's discriminator arithmetic (channel_base 16384,
# StyleGAN2-ADA's 256 px size; 4 bf16 blocks, NHWC, batched calls, blurs as banded-matrix products): 4.73
# s/kimg on an H200 after the D-input blur fade (2026-12-02; docs/training.md "Training speed"). The D step's
# generator forward from a CUDA graph since 420 kimg: the run's two leases of the sixth session, 23 ticks
# without and 25 with it, median 5.02 -> 4.84 s/kimg (mean 5.07 -> 4.83; same machine, consecutive calls).
CPU256 = TrainRecipe(preset="cpu256", resolution=256, batch=32, batch_gpu=32, num_views=4, gamma=0.4,
                     blur_fade_kimg=100.0, precision="tf32", d_channel_base=16384, d_bf16_blocks=4,
                     channels_last=True, batch_d_calls=True, d_blur="matmul", g_cuda_graphs=True)

RECIPES: dict[str, TrainRecipe] = {"cpu128": CPU128, "cpu256": CPU256}


def main(argv: list[str] | None = None) -> int:
    """``python -m training.recipes NAME``: print the recipe's ``python -m training`` options, one a line."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in RECIPES:
        print(f"usage: python -m training.recipes {{{','.join(RECIPES)}}}", file=sys.stderr)
        return 2
    print("\n".join(RECIPES[argv[0]].cli_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
