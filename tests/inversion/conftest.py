"""Fixtures for the inversion tests: a tiny generator whose output depends on w, small targets, real photos.

A freshly built generator ignores its latent (the transformer's layer scales start at zero), so the tiny
generator here gets random layer-scale weights: then w changes the image and the stages have something to fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.camera import orbit_cameras
from core.generator import Generator
from inversion.preprocess import InversionTarget
from inversion.steps import render_views
from tiny_generators import lively_tiny_generator  # tests/tiny_generators.py


@pytest.fixture
def tiny_G() -> Generator:
    return lively_tiny_generator()


@pytest.fixture
def tiny_target(tiny_G: Generator) -> InversionTarget:
    """Two 32 px views of a random latent of ``tiny_G`` (frontal and 20 deg to the side)."""
    cams = orbit_cameras(torch.tensor([0.0, 0.35]), 0.0)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        ws = torch.randn(1, tiny_G.config.num_ws, tiny_G.config.w_dim, generator=gen) * 2
        images = render_views(tiny_G, ws, cams, 32)
    return InversionTarget(images, torch.ones(2, 1, 32, 32), cams, ("front", "side"))


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut portrait (Eileen Collins, NASA, public domain), uint8 [512, 512, 3]."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()
