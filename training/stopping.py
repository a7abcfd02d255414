"""Graceful stopping: a STOP file in the run directory, SIGTERM/SIGINT, or a wall-clock limit.

The run writes a snapshot at the next step boundary (or, for ``--stop-after-minutes``, the next tick
boundary after the limit) and returns normally, so ``--resume <run dir>`` continues it. Rank 0 checks the
STOP file and the clock; every rank's signal flag counts; the decision is combined over ranks (one
all-reduce of a single integer per step) so all ranks stop at the same step.

The viewer's Training panel stops a run by creating ``<run dir>/STOP`` (``core.runs.request_stop``); the run
deletes it once honoured.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType

import torch

from core.runs import STOP_FILE

class TrainingStopped(RuntimeError):
    """The run stopped on an error it detected (non-finite loss, a snapshot that cannot be written, bad
    data); the message says why and what to do. The snapshots on disk are intact."""


# Reasons, combined over ranks with MAX: the largest code wins the log line.
NONE, TIME_LIMIT, STOP_FILE_SEEN, SIGNAL = 0, 1, 2, 3
REASONS = {TIME_LIMIT: "time limit", STOP_FILE_SEEN: f"{STOP_FILE} file", SIGNAL: "signal"}


class StopWatcher:
    """One rank's stop logic for one ``train()`` call.

    Args:
        run_dir: the run directory (rank 0 watches ``run_dir / STOP``).
        is_main: rank 0.
        stop_after_minutes: wall-clock limit from construction (None: none).
        start_time: ``time.time()`` when the process started training (a STOP file older than this is stale).
    """

    def __init__(self, run_dir: Path, is_main: bool, stop_after_minutes: float | None, start_time: float) -> None:
        self.stop_path = run_dir / STOP_FILE
        self.is_main = is_main
        self.deadline = None if stop_after_minutes is None else start_time + 60.0 * stop_after_minutes
        self.start_time = start_time
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def remove_stale_stop_file(self) -> bool:
        """Delete a STOP file written before this run started (left by an earlier, crashed run)."""
        if not self.is_main:
            return False
        try:
            if self.stop_path.stat().st_mtime < self.start_time:
                self.stop_path.unlink()
                return True
        except FileNotFoundError:
            pass
        return False

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set a flag instead of killing the process; a second SIGINT interrupts at once.
        Only possible in the main thread (elsewhere, signals keep their handlers)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without a snapshot
        self.signal_name = signal.Signals(signum).name

    def local_reason(self, at_tick: bool) -> int:
        """This rank's reason to stop after the step that just finished (``at_tick``: a tick boundary)."""
        if self.signal_name is not None:
            return SIGNAL
        if self.is_main and self.stop_path.exists():
            return STOP_FILE_SEEN
        if self.is_main and at_tick and self.deadline is not None and time.time() >= self.deadline:
            return TIME_LIMIT
        return NONE

    def decide(self, at_tick: bool, world_size: int, device: torch.device) -> int:
        """The reason every rank agrees on (MAX over ranks; a plain local check with one rank)."""
        reason = self.local_reason(at_tick)
        if world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                flag = torch.tensor([reason], dtype=torch.int32, device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                reason = int(flag.item())
        return reason

    def describe(self, reason: int, minutes: float | None) -> str:
        if reason == TIME_LIMIT:
            return f"stopped after the time limit (--stop-after-minutes {minutes:g})"
        if reason == SIGNAL:
            return f"stopped on request ({self.signal_name or 'signal on another rank'})"
        return f"stopped on request ({STOP_FILE} file)"

    def acknowledge(self) -> None:
        """Delete the STOP file once honoured (rank 0)."""
        if self.is_main:
            self.stop_path.unlink(missing_ok=True)
