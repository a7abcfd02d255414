"""3D-measured attributes: the measurement itself, and target matching moving the value toward the target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.editing import (
    Box, LatentEdit, Measurement, base_from_seed, fit_measured_directions, match_target, measure, measure_ws,
    pca_direction_set,
)
from core.gaussians import GaussianSet
from core.generator import PRESETS, Generator


def w_sensitive_tiny_generator(seed: int = 0) -> Generator:
    """The tiny preset with its zero-initialised layer scales randomised, so the output depends on w."""
    torch.manual_seed(seed)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        for block in G.transformer.modules():
            if hasattr(block, "scale1"):
                block.scale1.weight.normal_(0, 0.5)
                block.scale2.weight.normal_(0, 0.5)
    return G


def test_measure_color_and_width_of_known_gaussians():
    means = torch.tensor([[-0.1, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.4, 0.0]])
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    gs = GaussianSet.from_activated(means, rgb, torch.full((4,), 0.5), torch.full((4, 3), 0.01))
    box = Box((0.0, 0.0, 0.0), (0.2, 0.1, 0.1))  # the fourth Gaussian is outside
    color = measure(gs, Measurement("c", "color", box))
    torch.testing.assert_close(color, torch.tensor([1 / 3, 1 / 3, 1 / 3]), atol=1e-5, rtol=0)
    width = measure(gs, Measurement("w", "width", box))
    assert float(width) == pytest.approx(0.2, abs=1e-5)
    empty = measure(gs, Measurement("e", "color", Box((0.0, -0.4, 0.0), (0.01, 0.01, 0.01))))
    assert torch.isnan(empty).all()
    batched = GaussianSet(*(t[None].repeat(2, *([1] * t.dim())) for t in
                            (gs.means, gs.quats, gs.log_scales, gs.opacity_logits, gs.sh)))
    assert measure(batched, Measurement("c", "color", box)).shape == (2, 3)


@pytest.mark.slow
@pytest.mark.parametrize("quantity", ["color", "width"])
def test_target_matching_moves_the_measured_value_toward_the_target(quantity):
    from core.editing.pca import sample_ws

    G = w_sensitive_tiny_generator()
    dirs = pca_direction_set(G, "b" * 64, num_samples=500, num_components=0)
    m = Measurement("whole", quantity, Box((0.0, 0.0, 0.0), (0.5, 0.5, 0.5)))
    dirs = dirs.with_measurement(m, fit_measured_directions(G, m, dirs, sample_ws(G, 24, seed=3)))
    assert dirs.of_kind("measured") and dirs.measurements == (m,)
    edit = LatentEdit(base_from_seed(G, seed=5, psi=1.0))
    # A reachable target: what the head measures with its main measured slider at -2.
    target = measure_ws(G, edit.with_value("whole", -2.0).ws(dirs)[None], m)[0]
    result = match_target(G, edit, dirs, "whole", target, steps=4)
    assert result.start_error > 0.01
    assert result.error < 0.5 * result.start_error, (result.start, result.value, target)
    # The result is an ordinary slider setting on the untouched base: reversible.
    assert torch.equal(result.edit.base, edit.base)
    assert set(result.edit.slider_values) <= set(m.direction_names)
    assert torch.equal(result.edit.reset_all().ws(dirs), edit.base)
    np.testing.assert_allclose(measure_ws(G, result.edit.ws(dirs)[None], m)[0], result.value, atol=1e-5)
    with pytest.raises(ValueError, match="finite number"):
        match_target(G, edit, dirs, "whole", (0.1, 0.2) if quantity == "color" else (0.1, 0.2, 0.3))
