"""The Training panel's data: what to launch (:class:`TrainingLaunch`, which also builds the command line) and
what the app publishes about the followed run (:class:`TrainingInfo`). Plain data, no torch, no I/O."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TrainingLaunch:
    """What the Training panel starts (the CLI's options of the same names; see ``python -m training --help``).

    Attributes:
        data: dataset folder or zip. outdir: parent of the numbered run directories. preset: generator preset.
        batch / batch_gpu: total and per-GPU batch. gpus: processes (one per GPU; 1 = plain ``python -m``).
        kimg: training length. resume: a run directory or snapshot to continue ("" = new run).
        device: "auto", "cpu" or "cuda". snap_kimg / image_snap_kimg / tick_kimg: intervals in kimg.
        resolution: image size (0 = the preset's). workers: data-loader processes per rank.
        extra: further CLI arguments, passed as separate argv entries (never through a shell).
    """

    data: str
    outdir: str = "runs"
    preset: str = "cpu128"
    batch: int = 32
    batch_gpu: int = 8
    gpus: int = 1
    kimg: float = 1000.0
    resume: str = ""
    device: str = "auto"
    snap_kimg: float = 50.0
    image_snap_kimg: float = 10.0
    tick_kimg: float = 1.0
    resolution: int = 0
    workers: int = 2
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.data.strip():
            raise ValueError("choose a dataset folder or zip")
        if self.gpus < 1 or self.batch < 1 or self.batch_gpu < 1 or self.kimg <= 0:
            raise ValueError("gpus, batch, batch per GPU and kimg must be positive")
        if self.batch % (self.batch_gpu * self.gpus):
            raise ValueError(f"batch {self.batch} must be a multiple of batch per GPU x GPUs "
                             f"= {self.batch_gpu * self.gpus}")

    def command(self, python: str = sys.executable) -> list[str]:
        """The command line, exactly as a user would run it by hand."""
        args = ["--data", self.data, "--outdir", self.outdir, "--preset", self.preset, "--batch", str(self.batch),
                "--batch-gpu", str(self.batch_gpu), "--kimg", f"{self.kimg:g}", "--device", self.device,
                "--snap-kimg", f"{self.snap_kimg:g}", "--image-snap-kimg", f"{self.image_snap_kimg:g}",
                "--tick-kimg", f"{self.tick_kimg:g}", "--workers", str(self.workers)]
        if self.resolution:
            args += ["--resolution", str(self.resolution)]
        if self.resume:
            args += ["--resume", self.resume]
        args += list(self.extra)
        if self.gpus > 1:
            return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(self.gpus),
                    "-m", "training", *args]
        return [python, "-m", "training", *args]



@dataclass(frozen=True, eq=False)
class TrainingInfo:
    """The followed run as the panel shows it (published by the app about once a second).

    Attributes:
        run_dir: the run directory ('' until known). status: "starting", "running", "finished", "stopped",
        "failed" or "unknown". launched: the viewer started this run (and may stop it). kimg, total_kimg,
        sec_per_kimg, eta_s: progress. series: ``{name: [T] float32}`` (``"kimg"`` and the losses per tick).
        grid_texture: GL texture of the newest image grid (0 = none), grid_size its (w, h) in pixels,
        grid_name its file name. snapshots: snapshot file names, oldest first. error: why it failed.
        log_tail: newest log lines. stop_requested: a stop is pending.
    """

    run_dir: str = ""
    status: str = ""
    launched: bool = False
    kimg: float = 0.0
    total_kimg: float = 0.0
    sec_per_kimg: float = 0.0
    eta_s: float = 0.0
    series: dict[str, np.ndarray] = field(default_factory=dict)
    grid_texture: int = 0
    grid_size: tuple[int, int] = (0, 0)
    grid_name: str = ""
    snapshots: tuple[str, ...] = ()
    error: str = ""
    log_tail: str = ""
    stop_requested: bool = False
