"""A render request's plain data -> core calls (render worker thread only; torch and core imported lazily).

Nothing here defines a model rule: latents come from :mod:`core.latent`, sliders from
``core.editing.apply_sliders``, edits from :class:`core.edit_history.EditHistory`, images from
:func:`core.render.render`. This module only reads the typed fields of ``ui_state.render`` and passes them on.
"""

from __future__ import annotations

import math

import numpy as np

from ui_state.render import CameraParams, EditSpec, LatentParams, RenderParams, SliderParams


def camera_from_params(cam: CameraParams, width: int, height: int):
    """``core.camera.Cameras`` with batch shape ``[]`` for ``cam``: square pixels, ``fov_deg`` vertical."""
    import torch

    from core.camera import Cameras, focal_from_fov_deg, look_at, normalized_intrinsics, orbit_position

    yaw = torch.tensor(math.radians(cam.yaw_deg))
    pitch = torch.tensor(math.radians(max(-89.9, min(89.9, cam.pitch_deg))))
    if cam.mode == "orbit":
        target = torch.tensor(cam.target, dtype=torch.float32)
        position = orbit_position(yaw, pitch, torch.tensor(float(cam.radius)), target)
    else:
        position = torch.tensor(cam.position, dtype=torch.float32)
        target = position - orbit_position(yaw, pitch, torch.tensor(1.0), torch.zeros(3))
    focal = focal_from_fov_deg(cam.fov_deg)  # normalised by height
    K = normalized_intrinsics(focal)
    K[0, 0] = focal * height / width  # fx / W, so that fx = fy in pixels
    return Cameras(look_at(position, target), K)


def latent_ws(G, latent: LatentParams, device):
    """``[1, num_ws, w_dim]`` for ``latent``: an explicit w or z, the drag plot's seed grid, or the seed."""
    from core import latent as rules

    if latent.latent is not None and latent.space == "w":
        return rules.ws_from_values(G, latent.latent, device)
    if latent.latent is not None:
        import torch

        z = torch.tensor(latent.latent, dtype=torch.float32)
        if z.numel() != G.config.z_dim:
            raise ValueError(f"z latent has {z.numel()} numbers, the generator needs z_dim={G.config.z_dim}")
        return rules.map_z(G, z.reshape(1, -1), latent.psi, latent.cutoff, device)
    if latent.grid_xy is not None:
        return rules.seed_grid_ws(G, latent.seed, latent.grid_size, latent.grid_xy, latent.space, latent.psi,
                                  latent.cutoff, device)
    return rules.seed_ws(G, latent.seed, latent.psi, latent.cutoff, device)


def with_sliders(base_ws, sliders: SliderParams, directions):
    """``base_ws [1, num_ws, w_dim]`` plus the sliders (``core.editing.apply_sliders``); names the direction set
    does not have are ignored (a saved latent may name sliders of another model). ``directions``: the
    ``core.editing.DirectionSet`` of the source, or None."""
    if not sliders.values:
        return base_ws
    if directions is None:
        raise ValueError("the sliders' directions are not loaded for this model (reopen it)")
    import torch

    from core.editing import apply_sliders

    known = {k: v for k, v in sliders.values if k in directions.names}
    if not known:
        return base_ws
    base = base_ws[0].to(torch.float64)
    if base.shape[0] != directions.num_ws:  # one w for every slot: broadcast before the per-slot offsets
        base = base.expand(directions.num_ws, -1)
    return apply_sliders(base, directions, known).to(base_ws.dtype)[None]


def apply_edits(gs, edits: tuple[EditSpec, ...]):
    """``gs`` with the Edit panel's ops applied in order (``core.edit_history.EditHistory.apply``)."""
    if not edits:
        return gs
    from core.edit_history import EditHistory
    from viewer.features.edit_catalog import edit_from_spec

    return EditHistory(tuple(edit_from_spec(spec) for spec in edits)).apply(gs)


def make_image(gs, p: RenderParams, w: int, h: int) -> tuple[np.ndarray, str]:
    """``([h, w, 3] uint8, backend)`` of ``gs`` for ``p.mode`` and ``p.camera``."""
    import torch

    from core.render import render

    cams = camera_from_params(p.camera, w, h).to(gs.device)
    if p.splat_scale != 1.0:
        gs = type(gs)(gs.means, gs.quats, gs.log_scales + math.log(p.splat_scale), gs.opacity_logits, gs.sh)
    if p.mode == "centres":
        return _centres_image(gs, cams, w, h, p.background), "points"
    bg = p.background if p.mode == "rgb" else None
    out = render(gs, cams, w, h, background=bg, mode="rgb+depth" if p.mode == "depth" else "rgb")
    if p.mode == "rgb":
        img = out.color
    elif p.mode == "alpha":
        img = out.alpha.expand(h, w, 3)
    else:
        depth, drawn = out.depth[..., 0], out.alpha[..., 0] > 1.0 / 255.0
        img = torch.zeros_like(depth)
        if drawn.any():
            d = depth[drawn]
            lo, hi = d.min(), d.max()
            img[drawn] = 1.0 - (d - lo) / (hi - lo).clamp_min(1e-8)  # near = white
        img = img[..., None].expand(h, w, 3)
    return _to_uint8(img), out.backend


def _to_uint8(img) -> np.ndarray:
    import torch

    return np.ascontiguousarray((img.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy())


def _centres_image(gs, cams, w: int, h: int, background) -> np.ndarray:
    """The Gaussian centres projected as 1-pixel dots in their base colour, nearer dots on top."""
    import torch

    from core.gaussians import sh_dc_to_rgb

    viewmat = cams.world_to_camera()
    K = cams.pixel_intrinsics(w, h)
    x = gs.means @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = x[:, 2]
    uv = (x @ K.T)[:, :2] / z.clamp_min(1e-6)[:, None]
    col = sh_dc_to_rgb(gs.sh[:, 0, :]).clamp(0.0, 1.0)
    u, v = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    keep = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    order = torch.argsort(z[keep], descending=True)  # far first, near overwrites
    img = np.empty((h, w, 3), np.float32)
    img[:] = background
    # numpy fancy assignment: the last of repeated indices wins, so the nearest dot ends on top
    img[v[keep][order].cpu().numpy(), u[keep][order].cpu().numpy()] = col[keep][order].float().cpu().numpy()
    return _to_uint8(torch.from_numpy(img))
