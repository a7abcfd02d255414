"""Rank 0's writers of the run directory (names and layout: ``core.runs``): log.txt, stats.jsonl, TensorBoard,
status.json, error.txt and the image grids; what happens to the directory when a run starts or resumes
(:func:`prepare_run_dir`) and when it fails (:func:`record_failure`).

Writing never ends a run by itself: when the disk is full, a log line, tick record or status update that
cannot be written is reported once on stderr and skipped; only a snapshot that cannot be written stops the
run (``training.snapshots``), with a clear error.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.atomic_file import atomic_write
from core.runs import (
    ERROR_FILE,
    LOG_FILE,
    OPTIONS_FILE,
    STATS_FILE,
    RunStatus,
    clean_run_dir,
    truncate_stats,
    write_json,
    write_status,
)

if TYPE_CHECKING:
    from core.generator import GeneratorConfig
    from training.distributed import DistInfo, RankFailureWatch
    from training.trainer import Models
    from training.options import TrainOptions
    from training.snapshots import ResumePoint


def save_grid(path: Path, images: np.ndarray) -> None:
    """``images [rows, cols, H, W, 3]`` float in [0, 1] -> one PNG, written atomically."""
    rows, cols, h, w, _ = images.shape
    grid = (np.clip(images, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)
    with atomic_write(path) as f:
        Image.fromarray(grid).save(f, format="PNG")


class RunLog:
    """Rank 0's log: ``log()`` prints and appends to log.txt; ``stats()`` appends a tick to stats.jsonl and
    to TensorBoard when it is installed; ``status()`` rewrites status.json; ``error()`` writes error.txt.

    ``purge_step``: on resume, the image count of the snapshot (TensorBoard drops events after it, as
    stats.jsonl is truncated to it).
    """

    def __init__(self, run_dir: Path, enabled: bool = True, purge_step: int | None = None) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self._tb = None
        self._warned: set[str] = set()
        self._status: RunStatus | None = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir), purge_step=purge_step)
            except Exception:  # tensorboard is optional
                self._tb = None

    def _append(self, name: str, text: str) -> None:
        try:
            with open(self.run_dir / name, "a") as f:
                f.write(text)
        except OSError as exc:
            self._warn(name, exc)

    def _warn(self, name: str, exc: OSError) -> None:
        if name not in self._warned:
            self._warned.add(name)
            print(f"warning: cannot write {self.run_dir / name}: {exc} (further failures are not reported)",
                  file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        print(message, file=sys.stderr, flush=True)
        self._append(LOG_FILE, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def stats(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        import json

        self._append(STATS_FILE, json.dumps(record) + "\n")
        if self._tb is not None:
            try:
                step = int(round(record.get("kimg", 0) * 1000))
                for k, v in record.items():
                    if isinstance(v, (int, float)):
                        self._tb.add_scalar(k, v, step)
                self._tb.flush()
            except OSError as exc:
                self._warn("events (TensorBoard)", exc)

    def error(self, message: str) -> None:
        """Log ``ERROR: message``, write error.txt and mark the status failed (each best effort)."""
        self.log(f"ERROR: {message}")
        if self.enabled:
            try:
                with atomic_write(self.run_dir / ERROR_FILE) as f:
                    f.write((message + "\n").encode())
            except OSError as exc:  # a full disk may refuse even this; the message is on stderr above
                self._warn(ERROR_FILE, exc)
            self.status(state="failed", error=message)

    def status(self, initial: RunStatus | None = None, **changes) -> None:
        """Start (``initial``) or update status.json (``changes``: RunStatus fields); ``updated`` is set."""
        if not self.enabled:
            return
        if initial is not None:
            self._status = initial
        if self._status is None:
            return
        self._status = dataclasses.replace(self._status, **changes, updated=time.time())
        try:
            write_status(self.run_dir, self._status)
        except OSError as exc:
            self._warn("status.json", exc)

    def status_field(self, name: str):
        """A field of the status this log last wrote (None before the first)."""
        return getattr(self._status, name) if self._status is not None else None

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def prepare_run_dir(log: RunLog, run_dir: Path, opts: TrainOptions, g_config: GeneratorConfig, m: Models,
                     info: DistInfo, point: ResumePoint | None, resumed, cur_nimg: int, start_time: float,
                     launch_file: str | None) -> None:
    """Rank 0, before the first step: clean what interrupted writes left, cut stats.jsonl back to the
    snapshot, clear an old error, write options.json and the first status.json, log the start."""
    from training.handover import describe as describe_handover
    from training.snapshots import TrainingProgress, resume_differences

    removed = clean_run_dir(run_dir, older_than=start_time)
    if removed:
        log.log(f"removed {len(removed)} leftover file(s) of an interrupted write: "
                + ", ".join(p.name for p in removed[:6]) + (" ..." if len(removed) > 6 else ""))
    if resumed is not None:
        dropped = truncate_stats(run_dir, cur_nimg)
        if dropped:
            log.log(f"stats.jsonl: dropped {dropped} tick record(s) after {cur_nimg / 1000:.3f} kimg (the "
                    "snapshot resumed from is older than them; they are computed again)")
    old_error = run_dir / ERROR_FILE
    if old_error.is_file():
        log.log("previous error (cleared): " + old_error.read_text(errors="replace").strip()[:2000])
        old_error.unlink()
    write_json(run_dir / OPTIONS_FILE, {"options": opts.to_dict(), "generator": g_config.to_dict(),
                                      "discriminator": m.D.config.to_dict(), "world_size": info.world_size})
    log.status(RunStatus.new(total_kimg=opts.kimg, world_size=info.world_size, kimg=cur_nimg / 1000,
                             launch_file=None if launch_file is None else str(Path(launch_file).resolve())))
    if resumed is not None:
        saved = TrainingProgress.from_dict(resumed.training["progress"])
        diffs = resume_differences(resumed.training.get("options", {}), opts, info.world_size, saved.world_size)
        if diffs:
            log.log("note: resuming with changed " + "; ".join(diffs) + " (the run continues, but not "
                    "exactly as the uninterrupted run would)")
        handover_note = describe_handover(resumed.training)
        if handover_note:
            log.log(handover_note)
        if not isinstance(resumed.training.get("rng"), list) or len(resumed.training["rng"]) != info.world_size:
            log.log("note: the snapshot has no RNG states for this number of ranks; they start fresh")
    where = f"{point.path}" if point is not None and point.run_dir != run_dir else f"{run_dir}"
    log.log(f"{'resuming' if resumed is not None else 'starting'} {run_dir} at {cur_nimg / 1000:.3f} kimg on "
            f"{info.world_size} x {info.device.type}; {g_config.num_gaussians:,} Gaussians at "
            f"{opts.resolution or g_config.resolution} px" + (f" (from {where})" if resumed is not None else ""))


def record_failure(exc: BaseException, watch: RankFailureWatch, log: RunLog | None, run_dir: Path | None,
                    info: DistInfo) -> None:
    """Tell the other ranks (so none waits in a collective) and write the error where the user looks."""
    from training.stopping import TrainingStopped

    if isinstance(exc, SystemExit) and not exc.code:
        return
    message = str(exc) if isinstance(exc, TrainingStopped) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted (KeyboardInterrupt) without a snapshot"
    first = watch.publish(message)
    if not first:
        return  # another rank failed first: its message is the one that counts
    text = message if info.world_size == 1 else f"rank {info.rank}: {message}"
    if log is not None and log.enabled:
        log.error(text)
    elif run_dir is not None and not info.is_main:  # rank 0 may be stuck in a collective: write it here
        try:
            with atomic_write(run_dir / ERROR_FILE) as f:
                f.write((text + "\n").encode())
        except OSError:
            pass
