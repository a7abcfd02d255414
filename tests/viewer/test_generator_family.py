"""A second generator family plugs in behind ``core.generator_interface`` with no viewer change: a toy family
(not a CGS-GAN, different latent sizes, its own synthesis) goes through the studio's latent rules, PCA sliders,
the render worker (as an in-memory model, with sliders), ``.ply`` export and orbit-video frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.gaussians import GaussianSet
from core.generator_interface import GaussianHeadGenerator, check_generator
from ui_state.render import LatentParams, RenderParams, SliderParams
from viewer.viewport.worker import RenderWorker

N = 80


@dataclass(frozen=True)
class ToyConfig:
    z_dim: int = 8
    w_dim: int = 6
    num_ws: int = 3
    resolution: int = 32

    def to_dict(self) -> dict:
        return {"z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws, "resolution": self.resolution}


@dataclass(frozen=True, eq=False)
class ToyOutput:
    gaussians: GaussianSet


class ToyHeads(nn.Module):
    """Points on a sphere whose radius, colour and size follow the three w slots."""

    family = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.config = ToyConfig()
        g = torch.Generator().manual_seed(1)
        self.mapping = nn.Linear(8, 6)
        self.register_buffer("_w_avg", torch.zeros(6))
        dirs = torch.randn(N, 3, generator=g)
        self.register_buffer("dirs", dirs / dirs.norm(dim=1, keepdim=True))
        self.heads = nn.ModuleList([nn.Linear(6, 1), nn.Linear(6, 3), nn.Linear(6, 1)])

    @property
    def w_avg(self) -> torch.Tensor:
        return self._w_avg

    def map(self, z, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        ws = self.mapping(z)[:, None].repeat(1, self.config.num_ws, 1)
        cut = self.config.num_ws if truncation_cutoff is None else truncation_cutoff
        ws[:, :cut] = self._w_avg + truncation_psi * (ws[:, :cut] - self._w_avg)
        return ws

    def synthesis(self, ws):
        ws = ws.expand(-1, self.config.num_ws, -1) if ws.shape[1] == 1 else ws
        radius = 0.25 + 0.05 * torch.tanh(self.heads[0](ws[:, 0]))  # [B, 1]
        rgb = torch.sigmoid(self.heads[1](ws[:, 1]))[:, None].expand(-1, N, -1)
        log_scale = -3.5 + 0.2 * torch.tanh(self.heads[2](ws[:, 2]))[:, None].expand(-1, N, 3)
        B = ws.shape[0]
        means = radius[:, None] * self.dirs[None]
        quats = torch.tensor([1.0, 0.0, 0.0, 0.0]).expand(B, N, 4)
        return ToyOutput(GaussianSet.from_activated(means, rgb, torch.full((B, N), 0.9), log_scale.exp(), quats))


def test_a_second_family_works_everywhere(tmp_path):
    from core.editing import pca_direction_set
    from core.generator import PRESETS, Generator
    from core.latent import seed_grid_ws, seed_ws
    from core.orbit_video import OrbitVideoSettings, orbit_frames
    from core.ply import read_ply, write_ply

    toy = ToyHeads().eval()
    assert isinstance(toy, GaussianHeadGenerator) and check_generator(toy) is toy
    assert isinstance(Generator(PRESETS["tiny"]), GaussianHeadGenerator)
    from core.gghead.config import PRESETS as GGHEAD_PRESETS
    from core.gghead.generator import GGHeadGenerator

    gghead = GGHeadGenerator(GGHEAD_PRESETS["tiny"])
    assert isinstance(gghead, GaussianHeadGenerator) and check_generator(gghead) is gghead
    ws = seed_ws(toy, 3)
    assert ws.shape == (1, 3, 6)
    torch.testing.assert_close(seed_grid_ws(toy, 3, 4, (0.0, 0.0), "w"), ws)
    dirs = pca_direction_set(toy, "0" * 64, 256, 3)
    assert dirs.num_ws == 3 and len(dirs.directions) == 3

    with RenderWorker() as worker:
        source = worker.put_model("toy", toy)
        worker.set_directions(source, 1, dirs)
        base = RenderParams(source=source, width=48, height=40, latent=LatentParams(seed=3))
        plain = worker.wait(worker.submit(base), 60)
        assert plain.error is None, plain.error
        assert plain.image.shape == (40, 48, 3) and plain.stats.gaussians == N
        np.testing.assert_allclose(plain.ws, ws[0].numpy(), atol=1e-6)
        moved = worker.wait(worker.submit(RenderParams(source=source, width=48, height=40,
                                                       latent=LatentParams(seed=3),
                                                       sliders=SliderParams((("PCA0", 2.0),), 1))), 60)
        assert moved.error is None, moved.error
        np.testing.assert_array_equal(moved.base_ws, plain.ws)
        assert not np.array_equal(moved.image, plain.image), "a PCA slider of the toy family changed nothing"
        scene = moved.scene

    write_ply(tmp_path / "toy.ply", scene)
    assert read_ply(tmp_path / "toy.ply").num_gaussians == N
    frames = list(orbit_frames(scene, OrbitVideoSettings(frames=2, resolution=32)))
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3) and not np.array_equal(frames[0], frames[1])
