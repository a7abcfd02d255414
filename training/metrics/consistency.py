"""3D-consistency metrics that need no pretrained network.

Reprojection consistency (:func:`reprojection_consistency`, :func:`generator_consistency`)
----------------------------------------------------------------------------------------
Render one scene from two cameras A and B (by default B is A turned 20 degrees in yaw about the world's
up axis) with colour, alpha and expected depth. Pixels of A that are opaque (alpha > 0.95) are lifted to 3D
with A's expected depth and projected into B, where B's colour, alpha and depth are read bilinearly. Then,
as in multi-view-stereo depth fusion:

- pixels next to A's silhouette (a 4-neighbour is not opaque) and surface points seen more than ~75 deg
  from their normal in A or B (normal from A's depth map) are skipped: a single depth per pixel is
  ill-defined there, and they would measure resampling, not 3D structure;
- the point is **occluded** in B, and skipped, when B sees a mostly opaque surface (alpha > 0.5) clearly
  in front of it (B's depth < projected depth * (1 - depth_tol));
- otherwise B should see the same surface point, so A's colour is compared with B's there (both
  composited on the background). B seeing through it (background, or a surface behind it) counts as the
  colour error it causes.

The same is done from B to A; errors are pooled over both directions (and over scenes):

``psnr``             10 log10(1 / MSE) over the compared pixels, colours in [0, 1];
``l1``               their mean absolute error;
``coverage``         compared pixels / opaque pixels of A that land inside B (and B -> A);
``depth_agreement``  the fraction of compared pixels where B sees an opaque surface within depth_tol;
``depth_spread``     the median, over the opaque pixels seen face-on (as above, per view), of the
                     compositing-weighted standard deviation of the Gaussians' depths along the ray (scene
                     units; the head spans about 0.8). Like the renderer's depth it uses each Gaussian's
                     centre depth, so large splats on a slanted surface add to it. It is the "depth
                     distortion" that 2DGS and Mip-NeRF 360 penalise: near 0 for a thin surface, large for
                     layered fog. The median ignores the few pixels where a little weight leaks through to a
                     surface far behind, which dominate a mean.

An opaque, view-independent surface scores a high ``psnr`` (resampling keeps it finite) and a small
``depth_spread``. Sparse semi-transparent floaters score lower on ``psnr``, ``coverage`` and
``depth_agreement``: the expected depth of a fuzzy pixel is not a point of anything the other view sees.
Dense fog with many small random colours averages to a smooth, nearly view-independent image with a soft
"surface" at its boundary; its colours stay consistent and only ``depth_spread`` exposes it. So read
``psnr`` and ``depth_spread`` together. Measured at 64 px, 20 deg apart (the tests' cameras): synthetic
heads 27-34 dB / spread 0.004; an opaque disc sphere 36-41 dB / 0.01-0.02; 3,000 sparse floaters 26.8 dB,
coverage 0.60, depth agreement 0.75 / 0.092; 12,000 dense floaters 30.4 dB / 0.029. All numbers depend on
resolution and offset; compare models only under the same settings.

Ground-truth consistency (:func:`gt_consistency`; the split: training/metrics/eval_split.py)
-----------------------------------------------------------------------------------------------
On the synthetic dataset the held-out identities come with their Gaussians (``test/gt/IIIII.ply``) and
exact renders from fixed evaluation views (``test/images/IIIII_VV.png`` + masks). ``gt_consistency``
renders a predicted scene (e.g. an inversion or a reconstruction of that identity) from the same cameras
and reports PSNR / L1 against the stored images, over the whole image and inside the foreground mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.camera import Cameras, orbit_cameras
from core.gaussians import SH_C0, GaussianSet
from core.render import Backend, render
from training.metrics.eval_split import EvalIdentity, load_eval_split  # noqa: F401 (re-exported: their old home)

ALPHA_OPAQUE = 0.95
ALPHA_OCCLUDER = 0.5
DEPTH_TOL = 0.01
MIN_COS = 0.25  # skip surface points seen at more than ~75.5 deg from their normal
WHITE = (1.0, 1.0, 1.0)
SPREAD_BIN = 5e-4  # depth-spread histogram bin, scene units
SPREAD_BINS = 2000


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class ConsistencyResult:
    """Pooled reprojection errors and depth spread (see the module docstring); add or :meth:`pool` them.

    Raw sums: ``compared`` pixels, their summed squared (``sse``) and absolute (``sae``) colour errors over
    3 channels, ``candidates`` (opaque source pixels that land inside the other image), ``agreeing``
    (compared pixels whose depth B confirms), and ``spread_hist``, a histogram of the per-pixel depth spread
    of the opaque, facing pixels (bins of ``SPREAD_BIN`` scene units, the last one open-ended).
    """

    compared: int = 0
    sse: float = 0.0
    sae: float = 0.0
    candidates: int = 0
    agreeing: int = 0
    spread_hist: np.ndarray | None = None

    def __add__(self, other: ConsistencyResult) -> ConsistencyResult:
        hists = [h for h in (self.spread_hist, other.spread_hist) if h is not None]
        return ConsistencyResult(self.compared + other.compared, self.sse + other.sse, self.sae + other.sae,
                                 self.candidates + other.candidates, self.agreeing + other.agreeing,
                                 sum(hists[1:], hists[0].copy()) if hists else None)

    @classmethod
    def pool(cls, parts: Sequence[ConsistencyResult]) -> ConsistencyResult:
        return sum(parts, cls())

    @property
    def psnr(self) -> float:
        """dB over the compared pixels, colours in [0, 1]; ``nan`` if nothing was compared."""
        return psnr_from_mse(self.sse / (3 * self.compared)) if self.compared else math.nan

    @property
    def l1(self) -> float:
        return self.sae / (3 * self.compared) if self.compared else math.nan

    @property
    def coverage(self) -> float:
        """Compared / candidate pixels (the rest: occluded in the other view, seen edge-on, or at a silhouette)."""
        return self.compared / self.candidates if self.candidates else 0.0

    @property
    def depth_agreement(self) -> float:
        return self.agreeing / self.compared if self.compared else math.nan

    @property
    def depth_spread(self) -> float:
        """Median over opaque, facing pixels of the compositing-weighted standard deviation of the Gaussians'
        depths along the ray (scene units; the head spans about 0.8), to ``SPREAD_BIN``; ``nan`` if none."""
        h = self.spread_hist
        if h is None or h.sum() == 0:
            return math.nan
        k = int(np.searchsorted(np.cumsum(h), 0.5 * h.sum()))
        return (k + 0.5) * SPREAD_BIN

    def as_dict(self) -> dict:
        return {"psnr": self.psnr, "l1": self.l1, "coverage": self.coverage, "depth_agreement": self.depth_agreement,
                "depth_spread": self.depth_spread, "compared_pixels": self.compared}


def spread_histogram(spread: torch.Tensor) -> np.ndarray:
    """Counts of per-pixel spreads in bins of ``SPREAD_BIN`` (``SPREAD_BINS`` bins, the last open-ended)."""
    idx = (spread.detach().double().cpu() / SPREAD_BIN).floor().clamp(0, SPREAD_BINS - 1).long()
    return torch.bincount(idx.reshape(-1), minlength=SPREAD_BINS).numpy().astype(np.int64)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for signals in [0, 1]; ``inf`` for a zero error."""
    return math.inf if mse <= 0 else 10.0 * math.log10(1.0 / mse)


# ---------------------------------------------------------------------------------------------- cameras


def yaw_offset_cameras(cameras: Cameras, offset_deg: float | torch.Tensor) -> Cameras:
    """``cameras`` turned by ``offset_deg`` about the world's +y axis through the origin (positive toward +x,
    the same sense as orbit yaw); intrinsics unchanged. For an orbit camera this adds to its yaw exactly."""
    a = torch.deg2rad(torch.as_tensor(offset_deg, dtype=cameras.cam2world.dtype, device=cameras.device))
    a = a.expand(cameras.batch_shape)
    c, s = torch.cos(a), torch.sin(a)
    rot = torch.zeros(cameras.batch_shape + (4, 4), dtype=a.dtype, device=a.device)
    rot[..., 0, 0], rot[..., 0, 2], rot[..., 2, 0], rot[..., 2, 2] = c, s, -s, c
    rot[..., 1, 1] = rot[..., 3, 3] = 1.0
    return Cameras(rot @ cameras.cam2world, cameras.intrinsics)


# ---------------------------------------------------------------------------------------------- reprojection


def reprojection_consistency(scene: GaussianSet, cam_a: Cameras, cam_b: Cameras, resolution: int,
                             alpha_threshold: float = ALPHA_OPAQUE, depth_tol: float = DEPTH_TOL,
                             background: tuple[float, float, float] = WHITE, backend: Backend = "auto"
                             ) -> ConsistencyResult:
    """Reprojection consistency and depth spread of one scene between cameras ``cam_a`` and ``cam_b`` (batch
    shape ``[]``), both directions pooled. See the module docstring."""
    if scene.batch_shape != ():
        raise ValueError(f"scene must be one GaussianSet [N, ...], got batch shape {list(scene.batch_shape)}")
    cams = Cameras(torch.stack([cam_a.cam2world, cam_b.cam2world]), torch.stack([cam_a.intrinsics, cam_b.intrinsics]))
    with torch.no_grad():
        out = render(scene, cams.to(scene.device, scene.dtype), resolution, resolution, background=list(background),
                     mode="rgb", backend=backend)
        moments = [depth_moments(scene, cams[i], resolution, backend) for i in range(2)]
    views = [_View(out.color[i].double().clamp(0, 1), out.alpha[i, ..., 0].double(), moments[i][0].double(),
                   cams.cam2world[i].double().to(scene.device),
                   cams[i].pixel_intrinsics(resolution, resolution).double().to(scene.device)) for i in range(2)]
    surfaces = [_surface(v, alpha_threshold, MIN_COS) for v in views]
    result = (_warp_errors(views[0], surfaces[0], views[1], depth_tol, MIN_COS)
              + _warp_errors(views[1], surfaces[1], views[0], depth_tol, MIN_COS))
    for surf, (_, std) in zip(surfaces, moments):
        result = result + ConsistencyResult(spread_hist=spread_histogram(std[surf.facing.to(std.device)]))
    return result


def depth_moments(scene: GaussianSet, camera: Cameras, resolution: int, backend: Backend = "auto"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel, the mean and standard deviation ``[H, W]`` of the Gaussians' camera depths weighted by their
    compositing weights (0 where nothing is drawn). The mean equals the renderer's expected depth.

    Computed by rendering the same Gaussians with colours ``(z - r + 2, (z - r)^2, 0)``, where ``z`` is each
    Gaussian's camera depth and ``r`` the camera's distance to the origin (centring keeps float32 precise),
    and dividing by alpha.
    """
    if camera.batch_shape != ():
        raise ValueError(f"camera must be a single camera, got batch shape {list(camera.batch_shape)}")
    cam = camera.to(scene.device, scene.dtype)
    z = (scene.means - cam.centers) @ cam.cam2world[:3, 2]
    z0 = z - cam.centers.norm()
    values = torch.stack([z0 + 2.0, z0 * z0, torch.zeros_like(z0)], -1)
    sh = ((values - 0.5) / SH_C0)[:, None, :]
    encoded = GaussianSet(scene.means, scene.quats, scene.log_scales, scene.opacity_logits, sh)
    out = render(encoded, cam, resolution, resolution, background=None, mode="rgb", backend=backend)
    alpha = out.alpha[..., 0]
    drawn = alpha > 0
    a = alpha.clamp_min(1e-12)
    m1 = torch.where(drawn, out.color[..., 0] / a - 2.0, torch.zeros_like(alpha))
    m2 = torch.where(drawn, out.color[..., 1] / a, torch.zeros_like(alpha))
    std = (m2 - m1 * m1).clamp_min(0.0).sqrt()
    mean = torch.where(drawn, m1 + cam.centers.norm(), torch.zeros_like(alpha))
    return mean, std


@dataclass(frozen=True)
class _View:
    color: torch.Tensor   # [H, W, 3] float64, composited, clamped to [0, 1]
    alpha: torch.Tensor   # [H, W]
    depth: torch.Tensor   # [H, W] expected camera z (0 where nothing is drawn)
    c2w: torch.Tensor     # [4, 4]
    K: torch.Tensor       # [3, 3] pixels


@dataclass(frozen=True)
class _Surface:
    world: torch.Tensor     # [H, W, 3] the pixels lifted to world space with the expected depth
    normal: torch.Tensor    # [H, W, 3] unit normal of that point map (central differences)
    opaque: torch.Tensor    # [H, W] alpha above the threshold (and something drawn)
    interior: torch.Tensor  # [H, W] opaque with 4 opaque neighbours (normal defined)
    facing: torch.Tensor    # [H, W] interior and seen within acos(min_cos) of the normal


def _surface(view: _View, alpha_threshold: float, min_cos: float) -> _Surface:
    H, W = view.alpha.shape
    dev = view.alpha.device
    v, u = torch.meshgrid(torch.arange(H, device=dev, dtype=torch.float64) + 0.5,
                          torch.arange(W, device=dev, dtype=torch.float64) + 0.5, indexing="ij")
    z, K = view.depth, view.K
    x_cam = torch.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    world = x_cam @ view.c2w[:3, :3].T + view.c2w[:3, 3]
    opaque = (view.alpha > alpha_threshold) & (z > 0)
    pad = F.pad(opaque[None, None].double(), (1, 1, 1, 1))[0, 0]
    interior = opaque & (pad[1:-1, :-2] > 0) & (pad[1:-1, 2:] > 0) & (pad[:-2, 1:-1] > 0) & (pad[2:, 1:-1] > 0)
    wp = F.pad(world.permute(2, 0, 1)[None], (1, 1, 1, 1), mode="replicate")[0].permute(1, 2, 0)
    normal = torch.linalg.cross(wp[1:-1, 2:] - wp[1:-1, :-2], wp[2:, 1:-1] - wp[:-2, 1:-1], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    facing = interior & ((normal * F.normalize(world - view.c2w[:3, 3], dim=-1)).sum(-1).abs() > min_cos)
    return _Surface(world, normal, opaque, interior, facing)


def _warp_errors(src: _View, surf: _Surface, dst: _View, depth_tol: float, min_cos: float) -> ConsistencyResult:
    """Compare the surface points of ``src`` with what ``dst`` sees there (see the module docstring)."""
    H, W = src.alpha.shape
    R, t = dst.c2w[:3, :3], dst.c2w[:3, 3]
    p = (surf.world - t) @ R  # world -> dst camera: R^T (x - t)
    zt = p[..., 2]
    ut = dst.K[0, 0] * p[..., 0] / zt.clamp_min(1e-9) + dst.K[0, 2]
    vt = dst.K[1, 1] * p[..., 1] / zt.clamp_min(1e-9) + dst.K[1, 2]
    inside = (zt > 1e-6) & (ut >= 0) & (ut <= W) & (vt >= 0) & (vt <= H)
    facing_t = (surf.normal * F.normalize(surf.world - t, dim=-1)).sum(-1).abs() > min_cos
    cand = surf.facing & facing_t & inside

    grid = torch.stack([ut / W * 2 - 1, vt / H * 2 - 1], -1)[None]
    stack = torch.cat([dst.color, dst.alpha[..., None], (dst.alpha * dst.depth)[..., None]], -1)
    sampled = F.grid_sample(stack.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border",
                            align_corners=False)[0].permute(1, 2, 0)
    color_t, alpha_t = sampled[..., :3], sampled[..., 3]
    depth_t = sampled[..., 4] / alpha_t.clamp_min(1e-9)
    occluded = (alpha_t > ALPHA_OCCLUDER) & (depth_t < zt * (1 - depth_tol))
    compare = cand & ~occluded
    agree = compare & (alpha_t > ALPHA_OCCLUDER) & ((depth_t - zt).abs() <= depth_tol * zt)
    diff = (src.color - color_t)[compare]
    return ConsistencyResult(int(compare.sum()), float((diff ** 2).sum()), float(diff.abs().sum()),
                             int((surf.opaque & inside).sum()), int(agree.sum()))


def generator_consistency(G: torch.nn.Module, num_scenes: int = 64, resolution: int | None = None,
                          yaw_offset_deg: float = 20.0, labels: torch.Tensor | None = None,
                          truncation_psi: float = 1.0, seed: int = 0, batch: int = 4,
                          alpha_threshold: float = ALPHA_OPAQUE, depth_tol: float = DEPTH_TOL,
                          device: torch.device | str | None = None) -> ConsistencyResult:
    """Reprojection consistency pooled over ``num_scenes`` heads from ``G`` (z ~ N(0, I), seeded).

    View A of each head is a random ``labels`` row (the dataset's cameras) or, without labels, an orbit camera
    at the default radius with yaw ~ N(0, 20 deg) and pitch ~ N(0, 5 deg); view B is A turned by
    ``yaw_offset_deg`` with a random sign.
    """
    device = torch.device(device) if device is not None else next(G.parameters()).device
    res = resolution or G.config.resolution
    gen = torch.Generator().manual_seed(seed)
    parts = []
    done = 0
    while done < num_scenes:
        n = min(batch, num_scenes - done)
        z = torch.randn(n, G.config.z_dim, generator=gen)
        cams_a, cams_b = consistency_view_pairs(n, gen, labels, yaw_offset_deg)
        with torch.no_grad():
            scenes = G.synthesis(G.map(z.to(device), truncation_psi)).gaussians
        for i, scene in enumerate(scenes.unbind()):
            parts.append(reprojection_consistency(scene, cams_a[i], cams_b[i], res, alpha_threshold, depth_tol))
        done += n
    return ConsistencyResult.pool(parts)


def consistency_view_pairs(n: int, gen: torch.Generator, labels: torch.Tensor | None = None,
                           yaw_offset_deg: float = 20.0) -> tuple[Cameras, Cameras]:
    """Views A and B (``Cameras [n]`` each) of ``n`` consistency pairs, drawn from ``gen``: A a random
    ``labels`` row or an orbit camera with yaw ~ N(0, 20 deg), pitch ~ N(0, 5 deg); B = A turned by
    ``yaw_offset_deg`` about the world's up axis, with a random sign."""
    if labels is not None:
        labels_t = torch.as_tensor(labels, dtype=torch.float32)
        cams_a = Cameras.from_label(labels_t[torch.randint(len(labels_t), (n,), generator=gen)])
    else:
        yaw = torch.randn(n, generator=gen) * math.radians(20.0)
        pitch = torch.randn(n, generator=gen) * math.radians(5.0)
        cams_a = orbit_cameras(yaw, pitch)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return cams_a, yaw_offset_cameras(cams_a, sign * yaw_offset_deg)


def scenes_consistency(scenes: Sequence[GaussianSet], resolution: int, yaw_offset_deg: float = 20.0,
                       labels: torch.Tensor | None = None, seed: int = 0) -> ConsistencyResult:
    """:func:`generator_consistency`'s protocol for given scenes (each ``GaussianSet`` with batch shape []),
    e.g. the ground-truth heads of a held-out split: the ceiling a generator of such heads can reach. One
    view pair per scene from a stream seeded with ``seed`` (not the generator's pairs: those share the
    stream with its latents), pooled."""
    gen = torch.Generator().manual_seed(seed)
    cams_a, cams_b = consistency_view_pairs(len(scenes), gen, labels, yaw_offset_deg)
    return ConsistencyResult.pool([reprojection_consistency(scene, cams_a[i], cams_b[i], resolution)
                                   for i, scene in enumerate(scenes)])


# ---------------------------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GtResult:
    """Errors of renders against ground-truth images (colours in [0, 1], both quantised to uint8).

    ``psnr``/``l1`` over whole images (on the dataset's white background), ``psnr_mask``/``l1_mask`` inside
    the ground-truth foreground (mask > 0.5), ``per_view_psnr`` one value per camera.
    """

    psnr: float
    l1: float
    psnr_mask: float
    l1_mask: float
    per_view_psnr: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"psnr": self.psnr, "l1": self.l1, "psnr_mask": self.psnr_mask, "l1_mask": self.l1_mask,
                "per_view_psnr": list(self.per_view_psnr)}


def gt_consistency(scene: GaussianSet, cameras: Cameras, gt_images: torch.Tensor | np.ndarray,
                   gt_masks: torch.Tensor | np.ndarray | None = None,
                   background: tuple[float, float, float] = WHITE, backend: Backend = "auto") -> GtResult:
    """Render ``scene`` from ``cameras [V]`` and compare with ``gt_images`` uint8 ``[V, H, W, 3]``.

    The render is quantised like the stored PNGs (``round(255 * rgb)``), so the ground-truth scene itself
    scores ``inf`` (bit-exact) with the reference renderer. ``gt_masks``: ``[V, H, W]`` uint8 (0..255) or
    float/bool (0..1); without them the mask metrics are ``nan``.
    """
    gt = torch.as_tensor(np.asarray(gt_images) if not isinstance(gt_images, torch.Tensor) else gt_images)
    if gt.dtype != torch.uint8 or gt.dim() != 4 or gt.shape[-1] != 3:
        raise ValueError(f"gt_images must be uint8 [V, H, W, 3], got {gt.dtype} {list(gt.shape)}")
    V, H, W = gt.shape[:3]
    if cameras.batch_shape != (V,):
        raise ValueError(f"cameras must have batch shape [{V}] (one per image), got {list(cameras.batch_shape)}")
    with torch.no_grad():
        out = render(scene, cameras.to(scene.device, scene.dtype), W, H, background=list(background), mode="rgb",
                     backend=backend)
    pred = (out.color.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().double() / 255.0
    ref = gt.double() / 255.0
    err = pred - ref
    sq = (err ** 2).mean(-1)  # [V, H, W]
    ab = err.abs().mean(-1)
    per_view = tuple(psnr_from_mse(float(m)) for m in sq.mean((1, 2)))
    psnr_mask = l1_mask = math.nan
    if gt_masks is not None:
        m = torch.as_tensor(np.asarray(gt_masks) if not isinstance(gt_masks, torch.Tensor) else gt_masks)
        m = (m.double() / 255.0 if m.dtype == torch.uint8 else m.double()) > 0.5
        if m.shape != (V, H, W):
            raise ValueError(f"gt_masks must be [{V}, {H}, {W}], got {list(m.shape)}")
        if m.any():
            psnr_mask, l1_mask = psnr_from_mse(float(sq[m].mean())), float(ab[m].mean())
    return GtResult(psnr_from_mse(float(sq.mean())), float(ab.mean()), psnr_mask, l1_mask, per_view)
