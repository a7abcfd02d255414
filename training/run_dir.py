"""Rank 0's writers of the run directory (names and layout: ``core.runs``): log.txt, stats.jsonl, TensorBoard,
status.json, error.txt and the image grids.

Writing never ends a run by itself: when the disk is full, a log line, tick record or status update that
cannot be written is reported once on stderr and skipped; only a snapshot that cannot be written stops the
run (``training.snapshots``), with a clear error.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic_file import atomic_write
from core.runs import ERROR_FILE, LOG_FILE, STATS_FILE, RunStatus, write_status


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
