"""Training runs seen from the viewer: launch ``python -m training`` as a separate process, or attach to a run
directory started elsewhere, and follow it through the files the run itself writes (``core.runs``: its
status.json, stats.jsonl, grids and snapshots; never the terminal or the wording of its log).

- ``ui_state.training.TrainingLaunch``: the Training panel's choices as TrainOptions fields. The launch
  writes them to ``<outdir>/viewer-launch-<time>-<pid>.json`` and runs
  ``python -m training --options-json FILE`` (more than one GPU goes through ``torch.distributed.run``).
- :class:`TrainingProcess`: the child process (its own session, so closing the viewer does not kill it by
  accident), its console output in ``<outdir>/viewer-launch-<time>-<pid>.log``, and its run directory: the one
  whose status.json names the launch file (``core.runs.find_run_by_launch``).
- :func:`read_run`: a frozen :class:`RunView` of a run directory. Pure file reading, safe on half-written files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic_file import atomic_write
from core.runs import LOSS_KEYS, OPTIONS_JSON_FLAG, RunFiles, find_run_by_launch, read_run_files, tail
from ui_state.training import TrainingLaunch

ROOT = Path(__file__).resolve().parents[3]  # the repository: python -m training runs from here
STALE_S = 900.0  # an attached run on another host whose status.json is older than this is shown as "unknown"


def launch_command(launch: TrainingLaunch, options_file: str, python: str = sys.executable) -> list[str]:
    """The command line that runs ``launch`` from ``options_file`` (where ``launch.options()`` was written):
    ``python -m training --options-json FILE [extra...]``, through ``torch.distributed.run`` for several GPUs."""
    args = [OPTIONS_JSON_FLAG, options_file, *launch.extra]
    if launch.gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(launch.gpus),
                "-m", "training", *args]
    return [python, "-m", "training", *args]


class TrainingProcess:
    """A training run started by the viewer. ``run_dir`` is None until the run has created it."""

    def __init__(self, launch: TrainingLaunch, cwd: Path = ROOT) -> None:
        self.launch = launch
        outdir = Path(launch.outdir).expanduser()
        if not outdir.is_absolute():
            outdir = cwd / outdir
        outdir.mkdir(parents=True, exist_ok=True)
        stem = outdir / f"viewer-launch-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(self) % 10000:04d}"
        self.outdir = outdir
        self.options_file = stem.with_suffix(".json")
        self.console = stem.with_suffix(".log")
        with atomic_write(self.options_file) as f:
            f.write((json.dumps(launch.options(), indent=1) + "\n").encode())
        self.command = launch_command(launch, str(self.options_file))
        self.started = time.time()
        with open(self.console, "wb") as out:
            self.proc = subprocess.Popen(self.command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self._run_dir: Path | None = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def run_dir(self) -> Path | None:
        if self._run_dir is None:
            self._run_dir = find_run_by_launch(self.outdir, self.options_file)
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


@dataclass(frozen=True, eq=False)
class RunView:
    """One look at a run directory.

    Attributes:
        run_dir: the folder. status: "running", "finished", "stopped", "failed" or "unknown" (a run without
        status.json, or whose status.json is stale on another host). kimg / total_kimg: progress;
        sec_per_kimg and eta_s from the newest tick. series: ``{key: [T] float32}`` per tick for "kimg" and
        the losses (NaN where a tick had no value). grid: newest image-grid PNG, or None. snapshots: the file
        to open of every snapshot, oldest first. error: why it failed, or ''. log_tail: last lines of log.txt.
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
    files = read_run_files(run_dir)
    records = files.stats
    last = records[-1] if records else {}
    status, error = _status(files, process_alive)
    st = files.status
    kimg = st.kimg if st is not None else float(last.get("kimg", 0.0))
    total = st.total_kimg if st is not None else float(files.options.get("kimg", 0.0) or 0.0)
    speed = (st.sec_per_kimg if st is not None else None) or float(last.get("sec_per_kimg", 0.0) or 0.0)
    eta = (st.eta_s if st is not None else None) or float(last.get("eta_s", 0.0) or 0.0)
    series = {"kimg": np.array([r.get("kimg", np.nan) for r in records], np.float32)}
    for key in LOSS_KEYS:
        if any(key in r for r in records):
            series[key] = np.array([np.nan if r.get(key) is None else r[key] for r in records], np.float32)
    return RunView(files.run_dir, status, float(kimg), float(total), float(speed), float(eta), series, files.grid,
                   tuple(s.path for s in files.snapshots), error, files.log_tail, files.stop_requested)


def _status(files: RunFiles, alive: bool | None) -> tuple[str, str]:
    """(status, error) from the run's own status.json, corrected by what is known about its process."""
    st = files.status
    if st is None:  # not written yet, or a run from before status.json
        if files.error:
            return "failed", files.error
        if alive is not None:
            return ("running", "") if alive else ("failed", "the training process exited before its run started")
        return "unknown", ""
    if st.state != "running":
        return st.state, (files.error or st.error or "") if st.state == "failed" else ""
    known = alive if alive is not None else st.process_alive()
    if known is False:
        return "failed", files.error or ("the training process ended without a final status (killed?); the "
                                         "newest snapshot is intact: resume from it")
    if known is None and time.time() - st.updated > STALE_S:
        return "unknown", ""
    return "running", ""
