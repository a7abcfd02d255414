"""bench/gghead_gpu.py runs end to end in its tiny CPU mode (GGHead-format file -> render worker -> images), so
the GPU run of the full one does not die on plumbing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gghead_bench_runs_tiny_on_cpu(tmp_path):
    env = dict(os.environ, BENCH_RESULTS=str(tmp_path / "results.json"))
    args = ["--preset", "tiny", "--device", "cpu", "--resolution", "48", "--frames", "3", "--latents", "2",
            "--warmup", "1"]
    r = subprocess.run([sys.executable, "-m", "bench.gghead_gpu", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "428 Gaussians at 48^2 on cpu" in r.stdout and "camera moves:" in r.stdout
    figures = {f["name"]: f for f in json.loads((tmp_path / "results.json").read_text())}
    assert set(figures) == {"gghead_fps_gpu_48", "gghead_latent_ms_gpu_48"}
    assert figures["gghead_fps_gpu_48"]["value"] > 0 and figures["gghead_latent_ms_gpu_48"]["unit"] == "ms"
