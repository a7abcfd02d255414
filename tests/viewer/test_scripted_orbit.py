"""The scripted orbit that bench.viewer_fps runs (run_viewer.py --bench-orbit-s, --stats-json), in a real
window with a tiny random generator: the log counts window frames and new pictures separately."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("display", ["auto", "opengl"])
def test_orbit_stats_count_new_pictures(tmp_path, display):
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "run_viewer.py", "random:tiny", "--device", "cpu", "--resolution", "64",
           "--bench-orbit-s", "1.5", "--stats-json", str(stats), "--state-dir", str(tmp_path),
           "--width", "640", "--height", "420"]
    if display == "opengl":
        cmd += ["--display", "opengl"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and stats.exists(), r.stderr[-3000:]
    s = json.loads(stats.read_text())
    assert s["display_path"] == ("image" if display == "auto" else "opengl")
    assert s["seconds"] > 1.0 and s["frames"] >= 5, s
    assert s["pictures"] >= 5, s  # new pictures were counted (each for a new camera)
    if display == "opengl":
        assert s["gl_draws"] == s["pictures"], s  # every OpenGL draw is a picture, nothing else is
    else:
        assert s["gl_draws"] == 0, s
