"""Run the real studio window in a fresh process for a benchmark and read back its own statistics.

``run_viewer_bench(args, width, height)`` starts ``run_viewer.py <args> --stats-json ...`` (under ``xvfb-run`` when
there is no display), waits for it to exit (the ``--bench-*`` options end it) and returns the statistics JSON
(``viewer/window/scripted.py`` writes it). ``machine_load()`` is the note every viewer figure carries: timings on
a shared machine mean little, so the 1-minute load average at the time of measurement is part of the record.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_viewer_bench(args: list[str], width: int, height: int, timeout: float = 900.0) -> dict:
    """The ``--stats-json`` of one scripted window run (``RuntimeError`` with its stderr if it failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "run_viewer.py", *args, "--stats-json", str(stats), "--state-dir", tmp,
               "--width", str(width), "--height", str(height)]
        if not os.environ.get("DISPLAY") and shutil.which("xvfb-run"):
            cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {width}x{height}x24", *cmd]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 or not stats.exists():
            raise RuntimeError(f"viewer run failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return json.loads(stats.read_text())


def machine_load() -> str:
    """``"load average 0.8 (2 cores)"``: how busy the machine was (1-minute load average)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load:.2f} ({os.cpu_count()} cores)"


def cpu_device() -> str:
    return f"CPU x86_64, {os.cpu_count()} cores"
