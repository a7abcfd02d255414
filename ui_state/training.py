"""The Training panel's data (``UiState.training`` and ``AppInfo.training``): the form (:class:`TrainingForm`,
whose defaults are the panel's only defaults),
what to launch (:class:`TrainingLaunch`: the form's values as TrainOptions fields, serialised for
``python -m training --options-json FILE``) and what the app publishes about the followed run
(:class:`TrainingInfo`). Plain data, no torch, no I/O.

The viewer cannot import ``training`` (the import rule), so the launch is a JSON object of TrainOptions field
names; ``python -m training`` checks it strictly (unknown names are refused) and fills every option the form
does not set from TrainOptions' defaults, or, on resume, from the snapshot's run.
``tests/viewer/test_training_panel.py`` checks that every name here is a TrainOptions field, and that the form's
defaults are TrainOptions' except the panel's own choices (a desktop run: preset ``cpu128``, 1000 kimg).
The command line that runs a launch is built by ``viewer.features.training.runs.launch_command``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

@dataclass
class TrainingForm:
    """The Training panel's editable fields (see :class:`TrainingLaunch` for their meaning) and follow
    settings. The defaults are a short desktop run of the small ``cpu128`` preset."""

    data: str = ""
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
    extra: str = ""
    attach_dir: str = ""
    follow: bool = False


@dataclass(frozen=True)
class TrainingLaunch:
    """What the Training panel starts (the TrainOptions of the same names; ``python -m training --help``).

    Attributes:
        data: dataset folder or zip. outdir: parent of the numbered run directories. preset: generator preset.
        batch / batch_gpu: total and per-GPU batch. gpus: processes (one per GPU; 1 = plain ``python -m``).
        kimg: training length. resume: a run directory or snapshot to continue ("" = new run).
        device: "auto", "cpu" or "cuda". snap_kimg / image_snap_kimg / tick_kimg: intervals in kimg.
        resolution: image size (0 = the preset's). workers: data-loader processes per rank.
        extra: further CLI arguments after the options file (they override it), as separate argv entries
            (never through a shell).
    """

    data: str
    outdir: str
    preset: str
    batch: int
    batch_gpu: int
    gpus: int
    kimg: float
    resume: str
    device: str
    snap_kimg: float
    image_snap_kimg: float
    tick_kimg: float
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

    @classmethod
    def from_form(cls, form: TrainingForm, extra: tuple[str, ...] = ()) -> TrainingLaunch:
        """The launch for the form's values (ticks at least every kimg and at every snapshot or grid)."""
        return cls(data=form.data.strip(), outdir=form.outdir.strip() or "runs", preset=form.preset,
                   batch=form.batch, batch_gpu=form.batch_gpu, gpus=form.gpus, kimg=form.kimg,
                   resume=form.resume.strip(), device=form.device, snap_kimg=form.snap_kimg,
                   image_snap_kimg=form.image_snap_kimg,
                   tick_kimg=min(1.0, form.snap_kimg, form.image_snap_kimg), extra=extra)

    def options(self) -> dict[str, Any]:
        """The TrainOptions fields this launch sets (JSON-able), for ``--options-json``. Unset fields
        (resolution 0, no resume) are left out, so the run's own value (on resume) or the default applies."""
        opts: dict[str, Any] = {
            "data": self.data, "outdir": self.outdir, "preset": self.preset, "batch": self.batch,
            "batch_gpu": self.batch_gpu, "kimg": float(self.kimg), "device": self.device,
            "snap_kimg": float(self.snap_kimg), "image_snap_kimg": float(self.image_snap_kimg),
            "tick_kimg": float(self.tick_kimg), "workers": self.workers,
        }
        if self.resolution:
            opts["resolution"] = self.resolution
        if self.resume:
            opts["resume"] = self.resume
        return opts


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
