"""The run directory: where a training run writes everything, and how a killed run is found again.

    <outdir>/<NNNNN>-<preset>-<dataset>[-desc]/
        options.json                      the TrainOptions (plus the resolved generator/discriminator configs)
        log.txt                           everything printed
        stats.jsonl                       one JSON object per tick (kimg, timing, mean losses)
        events.*                          TensorBoard scalars, when tensorboard is installed
        fakes_init.png, fakes000010.png   image grids (fixed seeds x fixed views, G_ema, white background)
        network-snapshot-000000.pkl ...   training snapshots (core.checkpoint, written atomically)
        error.txt                         why the run stopped, if it stopped on an error (NaN loss, ...)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.atomic_file import atomic_write

SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6,})(?:\.(\d{3}))?\.pkl$")


def create_run_dir(outdir: str | os.PathLike, name: str) -> Path:
    """A new numbered run directory ``<outdir>/<next id>-<name>``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"(\d{5,})-", p.name))]
    run = outdir / f"{max(ids, default=-1) + 1:05d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
    run.mkdir()
    return run


def kimg_tag(nimg: int) -> str:
    """``000123`` for 123 kimg; runs shorter than whole kimg get the remaining images: ``000000.008``."""
    return f"{nimg // 1000:06d}" + (f".{nimg % 1000:03d}" if nimg % 1000 else "")


def snapshot_name(nimg: int) -> str:
    return f"network-snapshot-{kimg_tag(nimg)}.pkl"


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The snapshot of ``run_dir`` with the highest kimg (completed files only: snapshots are atomic)."""
    found = [(int(m.group(1)), int(m.group(2) or 0), p) for p in Path(run_dir).glob("network-snapshot-*.pkl")
             if (m := SNAPSHOT_RE.search(p.name))]
    return max(found)[2] if found else None


def write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def save_grid(path: Path, images: np.ndarray) -> None:
    """``images [rows, cols, H, W, 3]`` float in [0, 1] -> one PNG, written atomically."""
    rows, cols, h, w, _ = images.shape
    grid = (np.clip(images, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)
    with atomic_write(path) as f:
        Image.fromarray(grid).save(f, format="PNG")


class RunLog:
    """Rank 0's log: ``log()`` prints and appends to log.txt; ``stats()`` appends a tick to stats.jsonl and
    to TensorBoard when it is installed."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self._tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir))
            except Exception:  # tensorboard is optional
                self._tb = None

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        print(message, file=sys.stderr, flush=True)
        with open(self.run_dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def stats(self, record: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            step = int(record.get("kimg", 0) * 1000)
            for k, v in record.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def error(self, message: str) -> None:
        self.log(f"ERROR: {message}")
        if self.enabled:
            (self.run_dir / "error.txt").write_text(message + "\n")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
