"""Tiny random-weight generators for tests (tests/ is on sys.path through tests/conftest.py)."""

import torch

from core.generator import PRESETS, Generator


def lively_tiny_generator(seed: int = 0, gate_std: float = 1.0) -> Generator:
    """The ``tiny`` preset in eval mode with its transformer gates (the zero-initialised ``.scale`` weights)
    drawn from normal(0, ``gate_std``), so that w changes the head: at initialisation every block is the
    identity and the output ignores w."""
    torch.manual_seed(seed)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if ".scale" in name and name.endswith("weight"):
                p.normal_(0.0, gate_std)
    return G
