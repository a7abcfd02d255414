"""Training runs seen from the viewer: launch ``python -m training`` as a separate process, or attach to a run
directory started elsewhere, and follow it through the files the run itself writes (never the terminal).

- ``viewer.state.training.TrainingLaunch``: the Training panel's choices and the exact command line a user
  would type; more than one GPU goes through ``torch.distributed.run`` (torchrun).
- :class:`TrainingProcess`: the child process (its own session, so closing the viewer does not kill it by
  accident), its console output in ``<outdir>/viewer-launch-<time>.log``, and how its run directory is found
  (the run's first log line names it).
- :func:`read_run`: a frozen :class:`RunView` of a run directory: options, the tick records of
  ``stats.jsonl`` (kimg, speed, ETA, losses), the newest image grid and snapshot, ``error.txt``, and whether it
  finished, stopped or failed. Pure file reading, safe on half-written files.
- :func:`request_stop`: create ``<run dir>/STOP``; the run writes a snapshot and exits cleanly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from viewer.state.training import TrainingLaunch

ROOT = Path(__file__).resolve().parents[1]
STOP_FILE = "STOP"
SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6,})(?:\.(\d{3}))?\.pkl$")
GRID_RE = re.compile(r"fakes(\d{6,})(?:\.(\d{3}))?\.png$")
RUN_LINE_RE = re.compile(r"(?:starting|resuming) (.+?) at [\d.]+ kimg on ")
LOSS_KEYS = ("G_adv", "D_fake", "D_real", "D_r1", "G_knn", "G_center", "score_real", "score_fake")
MAX_STATS_BYTES = 64 << 20


class TrainingProcess:
    """A training run started by the viewer. ``run_dir`` is None until the run has created it."""

    def __init__(self, launch: TrainingLaunch, cwd: Path = ROOT) -> None:
        self.launch = launch
        outdir = Path(launch.outdir).expanduser()
        if not outdir.is_absolute():
            outdir = cwd / outdir
        outdir.mkdir(parents=True, exist_ok=True)
        self.console = outdir / f"viewer-launch-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        self.started = time.time()
        with open(self.console, "wb") as out:
            self.proc = subprocess.Popen(launch.command(), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self._run_dir: Path | None = None
        self._cwd = cwd

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def run_dir(self) -> Path | None:
        if self._run_dir is None:
            self._run_dir = find_run_dir(self.console, self._cwd)
        return self._run_dir

    def console_tail(self, lines: int = 20) -> str:
        return tail(self.console, lines)

    def terminate(self) -> None:
        """SIGTERM: the run writes a snapshot and exits cleanly (the same as a STOP file, but immediate)."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def find_run_dir(console: Path, cwd: Path = ROOT) -> Path | None:
    """The run directory named in the run's first log line (``starting <dir> at ...``), if written yet."""
    m = RUN_LINE_RE.search(tail(console, 200))
    if not m:
        return None
    p = Path(m.group(1))
    return p if p.is_absolute() else cwd / p


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file ('' if missing); reads at most 256 KiB."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - (256 << 10)))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def request_stop(run_dir: Path) -> None:
    """Ask the run to write a snapshot and exit cleanly at its next step (creates ``<run dir>/STOP``)."""
    (Path(run_dir) / STOP_FILE).write_text(f"requested by the viewer at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")


@dataclass(frozen=True, eq=False)
class RunView:
    """One look at a run directory.

    Attributes:
        run_dir: the folder. status: "running", "finished", "stopped", "failed" or "unknown" (attached runs:
        "running" while its log changed in the last 10 minutes). kimg / total_kimg: progress;
        sec_per_kimg and eta_s from the newest tick. series: ``{key: [T] float32}`` per tick for "kimg" and
        the losses (NaN where a tick had no value). grid: newest image-grid PNG, or None. snapshots: all
        snapshot files, oldest first. error: the text of error.txt, or ''. log_tail: last lines of log.txt.
        stop_requested: a STOP file is waiting to be honoured.
    """

    run_dir: Path
    status: str
    kimg: float
    total_kimg: float
    sec_per_kimg: float
    eta_s: float
    series: dict[str, np.ndarray]
    grid: Path | None
    snapshots: tuple[Path, ...]
    error: str
    log_tail: str
    stop_requested: bool


def read_run(run_dir: Path, process_alive: bool | None = None) -> RunView:
    """Read ``run_dir`` (see :class:`RunView`). ``process_alive``: known state of a child process, if any.
    Raises ``FileNotFoundError`` if the folder does not exist; everything else degrades gracefully."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"not a run directory: {run_dir}")
    records = _read_stats(run_dir / "stats.jsonl")
    total = _total_kimg(run_dir / "options.json")
    last = records[-1] if records else {}
    log_tail = tail(run_dir / "log.txt", 12)
    error = ""
    if (run_dir / "error.txt").is_file():
        error = tail(run_dir / "error.txt", 40)
    snaps = sorted((p for p in run_dir.glob("network-snapshot-*.pkl") if SNAPSHOT_RE.search(p.name)),
                   key=lambda p: tuple(int(g or 0) for g in SNAPSHOT_RE.search(p.name).groups()))
    grids = sorted((p for p in run_dir.glob("fakes*.png") if GRID_RE.search(p.name)),
                   key=lambda p: tuple(int(g or 0) for g in GRID_RE.search(p.name).groups()))
    grid = grids[-1] if grids else (run_dir / "fakes_init.png" if (run_dir / "fakes_init.png").is_file() else None)
    status = _status(run_dir, log_tail, error, process_alive)
    series = {"kimg": np.array([r.get("kimg", np.nan) for r in records], np.float32)}
    for key in LOSS_KEYS:
        vals = [r.get(key) for r in records]
        if any(key in r for r in records):
            series[key] = np.array([np.nan if v is None else v for v in vals], np.float32)
    return RunView(run_dir, status, float(last.get("kimg", 0.0)), total, float(last.get("sec_per_kimg", 0.0)),
                   float(last.get("eta_s", 0.0)), series, grid, tuple(snaps), error, log_tail,
                   (run_dir / STOP_FILE).exists())


def _status(run_dir: Path, log_tail: str, error: str, alive: bool | None) -> str:
    if error:
        return "failed" if alive is not True else "running"
    if "done: " in log_tail:
        return "finished"
    if "written; continue with --resume" in log_tail:
        return "stopped" if alive is not True else "running"
    if alive is not None:
        return "running" if alive else "failed"
    try:
        recent = time.time() - (run_dir / "log.txt").stat().st_mtime < 600
    except OSError:
        recent = False
    return "running" if recent else "unknown"


def _read_stats(path: Path) -> list[dict]:
    try:
        if path.stat().st_size > MAX_STATS_BYTES:
            return []
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a half-written last line
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _total_kimg(path: Path) -> float:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return float(data["options"]["kimg"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
