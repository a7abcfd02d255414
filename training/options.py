"""Training options: one frozen dataclass, which is also the command line (``python -m training --help``).

Defaults follow the CGS-GAN training recipe (fact sheet section 3) where it is documented; ``None``
defaults are derived from the batch size as the official code does (EMA half-life 10 kimg and D-input blur
fade 200 kimg at batch 32, scaled linearly with the batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config_dict import config_from_dict, config_to_dict
from core.generator import PRESETS
from training.discriminator_conv import BLUR_IMPLS, BlurImpl

Precision = Literal["fp32", "tf32", "bf16"]
# The generator presets, as a type tyro turns into the choices of ``--preset`` (core.generator owns the list).
PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class TrainOptions:
    """Train a CGS-GAN-style generator.

    Attributes:
        data: dataset folder or .zip in the EG3D/CGS-GAN layout (images, dataset.json, optional mask/).
        outdir: parent folder of the numbered run directories.
        preset: generator preset (a name in core.generator.PRESETS).
        resolution: image resolution for rendering and the discriminator (default: the preset's).
        batch: total batch size over all GPUs (images per optimizer step).
        batch_gpu: micro-batch per GPU (gradients accumulate over batch / (batch_gpu * GPUs) rounds).
        kimg: total training length in thousands of real images shown to D.
        g_lr, d_lr: Adam learning rates (xyz_const uses g_lr * 0.01, as the later official release).
        betas: Adam betas (D's are raised to the power 16/17 for lazy R1, its lr scaled by 16/17).
        gamma: R1 weight; r1_interval: lazy R1 every N steps (loss scaled by N).
        ema_kimg: half-life of the EMA generator in kimg (default 10 * batch / 32); ema_rampup: ramp-up
            factor (EMA length at most rampup * images so far; None disables).
        blur_fade_kimg: D-input blur fades to 0 over this many kimg (default 200 * batch / 32); blur_sigma:
            initial blur sigma in pixels (0 disables).
        knn_weight, knn_k: weight and neighbour count of the KNN regularizer on level-0 anchors.
        center_weight: weight of the anchor-centre regularizer.
        multiview: render every generated scene from the cameras of ``num_views`` other batch samples
            (else from its own camera).
        mirror: add x-flipped copies of the real images (labels mirrored).
        random_background: composite reals (with masks) and render fakes on random colours.
        masks: use dataset masks: "auto", "yes" or "no".
        index_list: JSON list of image indices or names with repeats (pose/expression rebalancing).
        max_images: use a random subset of this many images.
        g_clip, d_clip: gradient-norm clipping for G and D (0 disables).
        d_channel_base, d_channel_max, d_mapping_layers: discriminator size (channels at resolution r:
            min(d_channel_base / r, d_channel_max)). 32768 is the official value for 512 px; at 128 px
            16384 gives the D that StyleGAN2-ADA uses below 256 px, at a third of the FLOPs (docs/training.md,
            "Training speed").
        precision: "fp32" (TF32 off), "tf32" (TF32 matmuls), "bf16" (generator feature path in bfloat16).
        d_bf16_blocks: the discriminator's highest-resolution blocks that run in bfloat16 autocast
            (StyleGAN2's reduced-precision layers; the official D runs 4 in float16, conv outputs clamped to
            +-256). 0: the whole D in float32 (TF32 per ``precision``). The D-input blur, the lower blocks,
            the epilogue, the camera mapping and all losses stay float32. Changes the arithmetic (bf16 convs).
        channels_last: run the discriminator on NHWC activations on CUDA (same maths; the bf16 tensor-core
            convolutions prefer it, cuDNN's depthwise blur convolutions do not: docs/training.md).
        d_blur: how the discriminator computes its ``[1, 3, 3, 1]`` blurs: "matmul" (the default: a product
            with a banded matrix per axis, on the tensor cores, one pass over the activations per axis),
            "conv" (two depthwise convolutions, the default before 2026-12-02: cuDNN's depthwise kernels took
            60 % of the cpu128 recipe's GPU time; with "matmul" the recipe runs 3.27 s/kimg against 5.85,
            docs/training.md "Training speed"), "slices" (zero padding, 4 strided slices and multiply-adds per
            axis, summed in float32; slower than both on the H200) or "slices_bf16" (the same, summed in bf16
            in the bf16 blocks). An implementation choice with the same maths (equal up to rounding: in
            float32 within 1e-6 of the convolution, forward and gradients; under bf16 autocast one rounding
            per axis like the convolution; float32 products follow the TF32 switch like the convolutions), the
            same parameters and snapshots; a resumed run may switch it (it then differs from an
            uninterrupted run in the last bits, as after any rounding change, and the resume lists it among
            the differences; runs saved before the option existed count as "conv").
        batch_d_calls: one discriminator call per phase: the G step's V views as one batch of V x B, the D
            step's reals with its fakes (minibatch std within each part, so the result is what separate calls
            give). Off: one call per view and per kind, as before (kept for measurement).
        g_cuda_graphs: replay the D step's generator forward (no gradient) from a CUDA graph
            (core.cuda_graphs): the same kernels, launched at once instead of one by one from Python (the
            cgs512 profile: ~24 ms a step of mostly launch-bound generator forward). CUDA only, ignored on
            the CPU; if the capture fails the run says so and goes on without it. Off until measured.
        tick_kimg: progress/log interval; snap_kimg: network snapshot interval; image_snap_kimg: image
            grid interval (all in kimg).
        seed: global seed (each rank uses seed * world_size + rank).
        deterministic: use PyTorch's deterministic kernels (slower), so that a resumed run matches an
            uninterrupted one bit for bit; without it, some multi-threaded CPU and atomic GPU kernels make
            repeated runs differ in the last bits.
        workers: data-loader worker processes per rank.
        stop_after_minutes: wall-clock limit for this process: at the first tick boundary after it, write a
            snapshot and return normally (exit status 0), so ``--resume <run dir>`` continues. A ``STOP`` file
            in the run directory, SIGTERM or SIGINT stop the same way at the next step (training/stopping.py).
        resume: a run directory (continue it from its latest snapshot) or a snapshot file (its
            ``.safetensors``, ``.safetensors.index.json`` or format-1 ``.pkl``): continue that run, in the
            snapshot's own run directory when it lies in one, else in a new run directory under ``outdir``.
            On the command line, options not given explicitly then come from the snapshot's run.
        snapshot_max_part_mib: split each training snapshot into parts of at most this many MiB (plus an
            index file), e.g. to move runs through channels with a file-size limit; None: one file.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        desc: extra text in the run directory name.
    """

    data: str
    outdir: str = "runs"
    preset: PresetName = "cgs512"
    resolution: int | None = None
    batch: int = 32
    batch_gpu: int = 8
    kimg: float = 15000.0
    g_lr: float = 0.0025
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    gamma: float = 1.0
    r1_interval: int = 16
    ema_kimg: float | None = None
    ema_rampup: float | None = 0.05
    blur_fade_kimg: float | None = None
    blur_sigma: float = 10.0
    knn_weight: float = 20.0
    knn_k: int = 64
    center_weight: float = 1.0
    multiview: bool = True
    num_views: int = 4
    mirror: bool = True
    random_background: bool = True
    masks: Literal["auto", "yes", "no"] = "auto"
    index_list: str | None = None
    max_images: int | None = None
    g_clip: float = 20.0
    d_clip: float = 5.0
    d_channel_base: int = 32768
    d_channel_max: int = 512
    d_mapping_layers: int = 2
    precision: Precision = "tf32"
    d_bf16_blocks: int = 0
    channels_last: bool = False
    d_blur: BlurImpl = "matmul"
    batch_d_calls: bool = True
    g_cuda_graphs: bool = False
    tick_kimg: float = 1.0
    snap_kimg: float = 50.0
    image_snap_kimg: float = 10.0
    seed: int = 0
    deterministic: bool = False
    workers: int = 2
    stop_after_minutes: float | None = None
    resume: str | None = None
    snapshot_max_part_mib: float | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    desc: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.preset not in PRESETS:
            problems.append(f"unknown preset {self.preset!r} (choose one of {', '.join(PRESETS)})")
        if self.batch < 1 or self.batch_gpu < 1:
            problems.append("batch and batch_gpu must be positive")
        if self.kimg <= 0:
            problems.append("kimg must be positive")
        if self.multiview and self.num_views < 1:
            problems.append("num_views must be at least 1")
        if self.r1_interval < 1:
            problems.append("r1_interval must be at least 1")
        if self.d_bf16_blocks < 0:
            problems.append("d_bf16_blocks must be at least 0")
        if self.d_blur not in BLUR_IMPLS:
            problems.append(f"d_blur must be one of {', '.join(BLUR_IMPLS)}, got {self.d_blur!r}")
        if self.knn_k < 1:
            problems.append("knn_k must be at least 1")
        if self.batch_gpu % min(4, self.batch_gpu):
            problems.append("batch_gpu must be divisible by the minibatch-std group size min(4, batch_gpu)")
        if min(self.tick_kimg, self.snap_kimg, self.image_snap_kimg) <= 0:
            problems.append("tick_kimg, snap_kimg and image_snap_kimg must be positive")
        if self.stop_after_minutes is not None and not self.stop_after_minutes >= 0:
            problems.append("stop_after_minutes must be at least 0")
        if self.snapshot_max_part_mib is not None and not self.snapshot_max_part_mib >= 1 / 64:
            problems.append("snapshot_max_part_mib must be at least 1/64 (16 KiB)")
        if problems:
            raise ValueError("invalid training options: " + "; ".join(problems))

    @property
    def ema_kimg_value(self) -> float:
        return self.ema_kimg if self.ema_kimg is not None else 10.0 * self.batch / 32

    @property
    def blur_fade_kimg_value(self) -> float:
        return self.blur_fade_kimg if self.blur_fade_kimg is not None else 200.0 * self.batch / 32

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        return config_from_dict(cls, d, "training options")
