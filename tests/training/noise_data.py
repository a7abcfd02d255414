"""A throw-away training dataset for tests: noise images with valid EG3D labels (the loop does not care what
the images show). tests/training is on sys.path while its tests run."""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.camera import orbit_cameras


def write_noise_dataset(root: Path, resolution: int, count: int = 8) -> Path:
    """``count`` random ``resolution``-px PNGs in ``root`` (yaw -0.6 ... 0.6 rad, pitch 0.1) and their
    dataset.json; returns ``root``."""
    g = np.random.default_rng(0)
    labels = orbit_cameras(torch.linspace(-0.6, 0.6, count), 0.1).to_label()
    entries = []
    for i in range(count):
        Image.fromarray(g.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8)).save(root / f"{i:05d}.png")
        entries.append([f"{i:05d}.png", labels[i].tolist()])
    (root / "dataset.json").write_text(json.dumps({"labels": entries}))
    return root
