"""The run-directory contract: what a training run writes, under which names, and how to read it back.

Training (``python -m training``) writes; the viewer and tools read; both import the names from here.

    <outdir>/<NNNNN>-<preset>-<dataset>[-desc]/
        options.json                          {"options": TrainOptions, "generator": ..., "discriminator": ...,
                                               "world_size": N}
        status.json                           RunStatus: state, kimg, speed, ETA, last snapshot, error, pid
        log.txt                               everything the run printed (history; resumes append)
        stats.jsonl                           one JSON object per tick: STATS_FIELDS + LOSS_KEYS
        events.*                              TensorBoard scalars, when tensorboard is installed
        fakes_init.png, fakes000010.png       image grids (fixed seeds x fixed views, G_ema, white background)
        network-snapshot-000040.safetensors   training snapshots (core.snapshots), or, when sharded,
        network-snapshot-000040.safetensors.index.json + network-snapshot-000040-0000i-of-0000n.safetensors
        network-snapshot-000040.pkl           format-1 snapshots of runs from before safetensors (read-only)
        error.txt                             why the run stopped on an error (NaN loss, full disk, a rank)
        STOP                                  written by whoever wants the run to stop (the run deletes it)

All JSON files are written atomically (a reader sees the old or the new file); stats.jsonl and log.txt are
appended (a reader must skip a half-written last line).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from core.atomic_file import atomic_write, stale_temporaries
from core.tensor_files import INDEX_SUFFIX, SUFFIX, orphan_parts

OPTIONS_FILE = "options.json"
STATUS_FILE = "status.json"
LOG_FILE = "log.txt"
STATS_FILE = "stats.jsonl"
ERROR_FILE = "error.txt"
STOP_FILE = "STOP"
INIT_GRID = "fakes_init.png"
SNAPSHOT_PREFIX = "network-snapshot-"
LEGACY_SUFFIX = ".pkl"  # format-1 snapshots of runs from before safetensors (read-only)
OPTIONS_JSON_FLAG = "--options-json"  # python -m training reads a JSON object of TrainOptions fields from here

# stats.jsonl: every tick record has STATS_FIELDS (peak_gpu_mem_gib on CUDA only) and LOSS_KEYS (None for a
# loss the tick did not compute, e.g. D_r1 in ticks without an R1 step)
STATS_FIELDS = ("kimg", "sec_per_kimg", "time_s", "eta_s", "peak_gpu_mem_gib")
LOSS_KEYS = ("G_adv", "G_center", "G_knn", "D_fake", "D_real", "D_r1", "score_real", "score_fake")

MAX_STATS_BYTES = 64 << 20
MAX_JSON_BYTES = 4 << 20
_RUN_RE = re.compile(r"^(\d{5,})-")
_TAG = r"(\d{6,})(?:\.(\d{3}))?"
SNAPSHOT_RE = re.compile(
    rf"^{SNAPSHOT_PREFIX}{_TAG}({re.escape(INDEX_SUFFIX)}|{re.escape(SUFFIX)}|{re.escape(LEGACY_SUFFIX)})$")
GRID_RE = re.compile(rf"^fakes{_TAG}\.png$")

RunState = Literal["running", "stopped", "finished", "failed"]


# ---------------------------------------------------------------------------------------------- names


def kimg_tag(nimg: int) -> str:
    """``000123`` for 123 kimg; runs shorter than whole kimg get the remaining images: ``000000.008``."""
    return f"{nimg // 1000:06d}" + (f".{nimg % 1000:03d}" if nimg % 1000 else "")


def snapshot_path(run_dir: str | os.PathLike, nimg: int) -> Path:
    """Where the snapshot at ``nimg`` images is written (the single-file name; a sharded write turns it into
    ``<name>.index.json`` plus parts, see core.tensor_files)."""
    return Path(run_dir) / f"{SNAPSHOT_PREFIX}{kimg_tag(nimg)}{SUFFIX}"


def grid_path(run_dir: str | os.PathLike, nimg: int) -> Path:
    return Path(run_dir) / f"fakes{kimg_tag(nimg)}.png"


def _nimg(m: re.Match) -> int:
    return int(m.group(1)) * 1000 + int(m.group(2) or 0)


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot in a run directory: ``nimg`` images shown, ``path`` the file to open (single file, index or
    format-1 .pkl)."""

    nimg: int
    path: Path

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


def list_snapshots(run_dir: str | os.PathLike) -> list[SnapshotRef]:
    """The run's complete snapshots, oldest first (writes are atomic; an index exists only when its parts do).
    Of two files for the same kimg (e.g. a .pkl and a .safetensors) the safetensors one wins."""
    rank = {LEGACY_SUFFIX: 0, SUFFIX: 1, INDEX_SUFFIX: 2}
    best: dict[int, tuple[int, Path]] = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(run_dir):
            m = SNAPSHOT_RE.match(entry.name)
            if m and entry.is_file():
                n, r = _nimg(m), rank[m.group(3)]
                if n not in best or r > best[n][0]:
                    best[n] = (r, Path(entry.path))
    return [SnapshotRef(n, best[n][1]) for n in sorted(best)]


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    """The file of the run's newest snapshot, or None."""
    snaps = list_snapshots(run_dir)
    return snaps[-1].path if snaps else None


def snapshot_files(path: str | os.PathLike) -> list[Path]:
    """Every file of the snapshot ``path`` (an index and its parts, or the one file): what to copy to move it."""
    from core.tensor_file_reader import open_tensor_file

    path = Path(path)
    if path.name.endswith(INDEX_SUFFIX):
        return list(open_tensor_file(path).files)
    return [path]


def newest_grid(run_dir: str | os.PathLike) -> Path | None:
    """The newest image grid (``fakesNNNNNN.png``, else ``fakes_init.png``), or None."""
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(run_dir):
            m = GRID_RE.match(entry.name)
            if m:
                found.append((_nimg(m), Path(entry.path)))
    if found:
        return max(found)[1]
    init = Path(run_dir) / INIT_GRID
    return init if init.is_file() else None


def create_run_dir(outdir: str | os.PathLike, name: str) -> Path:
    """A new numbered run directory ``<outdir>/<next id>-<name>``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := _RUN_RE.match(p.name))]
    run = outdir / f"{max(ids, default=-1) + 1:05d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
    run.mkdir()
    return run


def is_run_dir(path: str | os.PathLike) -> bool:
    """A folder that a run wrote (has options.json or status.json) or is named like one (``00012-...``)."""
    p = Path(path)
    return p.is_dir() and ((p / OPTIONS_FILE).is_file() or (p / STATUS_FILE).is_file()
                           or bool(_RUN_RE.match(p.name)))


def request_stop(run_dir: str | os.PathLike, by: str = "a user") -> None:
    """Ask the run to write a snapshot and exit cleanly at its next step (creates ``<run dir>/STOP``)."""
    (Path(run_dir) / STOP_FILE).write_text(f"requested by {by} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")


def clean_run_dir(run_dir: str | os.PathLike, older_than: float) -> list[Path]:
    """Delete what interrupted writes left (hidden ``.tmp`` files, snapshot parts without an index), if last
    modified before ``older_than``; returns what was deleted."""
    removed = []
    for p in stale_temporaries(run_dir, older_than) + orphan_parts(run_dir, older_than):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class RunStatus:
    """``status.json``: the run's own account of where it is (rank 0 writes it at start, every tick, every
    snapshot and at the end).

    Attributes:
        state: "running", "stopped" (on request or time limit; resumable), "finished" or "failed".
        kimg, total_kimg: progress; sec_per_kimg, eta_s: from the last tick (None before the first).
        last_snapshot: file name of the newest snapshot this run wrote (None before the first).
        error: why it failed (also in error.txt); stop_reason: why it stopped ("STOP file", "SIGTERM", ...).
        pid, host: rank 0's process; world_size: ranks. started, updated: ``time.time()`` seconds.
        launch_file: the ``--options-json`` file the run was started with (how a launcher finds its run).
    """

    state: RunState
    kimg: float = 0.0
    total_kimg: float = 0.0
    sec_per_kimg: float | None = None
    eta_s: float | None = None
    last_snapshot: str | None = None
    error: str | None = None
    stop_reason: str | None = None
    pid: int = 0
    host: str = ""
    world_size: int = 1
    started: float = 0.0
    updated: float = 0.0
    launch_file: str | None = None

    def __post_init__(self) -> None:
        if self.state not in ("running", "stopped", "finished", "failed"):
            raise ValueError(f"unknown run state {self.state!r}")

    @classmethod
    def new(cls, total_kimg: float, world_size: int, launch_file: str | None = None, kimg: float = 0.0
            ) -> RunStatus:
        now = time.time()
        return cls("running", kimg=kimg, total_kimg=total_kimg, pid=os.getpid(), host=socket.gethostname(),
                   world_size=world_size, started=now, updated=now, launch_file=launch_file)

    def process_alive(self) -> bool | None:
        """Whether rank 0's process still exists (None when it ran on another host)."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def write_status(run_dir: str | os.PathLike, status: RunStatus) -> None:
    data = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(status).items()}
    write_json(Path(run_dir) / STATUS_FILE, data)


def read_status(run_dir: str | os.PathLike) -> RunStatus | None:
    """The run's status.json, or None when missing or unreadable (a run from before status.json)."""
    data = read_json(Path(run_dir) / STATUS_FILE)
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(RunStatus)}
    try:
        return RunStatus(**{k: v for k, v in data.items() if k in known})
    except (TypeError, ValueError):
        return None


def find_run_by_launch(outdir: str | os.PathLike, launch_file: str | os.PathLike) -> Path | None:
    """The run directory under ``outdir`` whose status.json names ``launch_file`` (newest first)."""
    target = os.path.abspath(launch_file)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        runs = sorted((p for p in Path(outdir).iterdir() if _RUN_RE.match(p.name)), reverse=True)
        for run in runs:
            status = read_status(run)
            if status is not None and status.launch_file == target:
                return run
    return None


# ---------------------------------------------------------------------------------------------- files


def write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parsed JSON, or None when missing, too large or unreadable."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def read_options(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``options.json``'s ``options`` (the TrainOptions as a dict), or {}."""
    data = read_json(Path(run_dir) / OPTIONS_FILE)
    opts = data.get("options") if isinstance(data, dict) else None
    return opts if isinstance(opts, dict) else {}


def read_stats(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The tick records of stats.jsonl (a half-written last line is skipped; [] when missing or huge)."""
    path = Path(run_dir) / STATS_FILE
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
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def truncate_stats(run_dir: str | os.PathLike, nimg: int) -> int:
    """Drop the tick records after ``nimg`` images (a resumed run repeats those ticks); returns how many
    were dropped. The file is rewritten atomically."""
    path = Path(run_dir) / STATS_FILE
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    keep = []
    for line in lines:
        try:
            rec = json.loads(line)
            kimg = float(rec["kimg"])
        except (ValueError, KeyError, TypeError, RecursionError):
            continue  # a half-written line of the killed run
        if round(kimg * 1000) <= nimg:
            keep.append(line)
    dropped = len(lines) - len(keep)
    if dropped:
        with atomic_write(path) as f:
            f.write("".join(line + "\n" for line in keep).encode())
    return dropped


def tail(path: str | os.PathLike, lines: int) -> str:
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


@dataclass(frozen=True, eq=False)
class RunFiles:
    """One read of a run directory (see :func:`read_run_files`)."""

    run_dir: Path
    status: RunStatus | None
    options: dict[str, Any]
    stats: list[dict[str, Any]]
    snapshots: list[SnapshotRef]
    grid: Path | None
    error: str
    log_tail: str
    stop_requested: bool


def read_run_files(run_dir: str | os.PathLike, log_lines: int = 12) -> RunFiles:
    """Read everything a follower shows; tolerant of half-written files. FileNotFoundError when the folder
    does not exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"not a run directory: {run_dir}")
    error = tail(run_dir / ERROR_FILE, 40) if (run_dir / ERROR_FILE).is_file() else ""
    return RunFiles(run_dir, read_status(run_dir), read_options(run_dir), read_stats(run_dir),
                    list_snapshots(run_dir), newest_grid(run_dir), error, tail(run_dir / LOG_FILE, log_lines),
                    (run_dir / STOP_FILE).exists())
