"""Run every benchmark that fits this machine: ``python -m bench`` (``make bench``).

CPU benchmarks always run; GPU benchmarks run when CUDA is available.
"""

from __future__ import annotations

import importlib
import sys

import torch

# the viewer_* benches need a display or xvfb-run, and a quiet machine (they time the real window)
CPU = ["bench.parameters", "bench.render_cpu", "bench.viewer_fps", "bench.viewer_latent", "bench.viewer_idle"]
GPU = ["bench.render_gpu", "bench.synthesis", "bench.train_speed", "bench.viewer_gpu", "bench.inversion"]


def main() -> None:
    modules = CPU + (GPU if torch.cuda.is_available() else [])
    for name in modules:
        print(f"== {name}")
        sys.argv = [name]
        importlib.import_module(name).main()
    if not torch.cuda.is_available():
        print("(GPU benchmarks skipped: no CUDA here; run them on a GPU machine)")


if __name__ == "__main__":
    main()
