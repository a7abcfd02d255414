"""The render worker: one daemon thread that owns the models and the device (architecture-and-style.md, 4-5).

The GUI thread calls :meth:`RenderWorker.submit` with a :class:`~viewer.state.RenderParams` (never blocks: a
size-1 mailbox keeps only the newest request, older unstarted ones are dropped) and polls
:meth:`RenderWorker.latest` (never blocks) for the newest finished :class:`~viewer.state.RenderResult`.
Generations are monotonic; a published result is never older than one published before it.

Caches: the loaded model per ``(source, device)``, the generated Gaussians per ``(source, device, latent)``, and
the last edited scene (with its OpenGL arrays) per ``(..., edits)``, so a camera-only change only re-rasterizes
and an ``output="scene"`` request for an unchanged scene costs nothing. Every exception in a request becomes ``RenderResult(error=...)``
and the thread keeps serving; after a CUDA out-of-memory error the caches are dropped.

torch and ``core`` are imported lazily, on the worker thread, so importing this module is cheap.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from viewer.state import RANDOM_SOURCES, CameraParams, LatentParams, RenderParams, RenderResult, RenderStats

LOW_RES_DIVISOR = 4
MAX_MODELS = 2  # loaded models kept (per source and device)
MAX_SCENES = 4  # generated scenes kept (per source, device and latent)
SH_C0 = 0.28209479177387814


@dataclass
class _Model:
    kind: str  # "generator" or "scene"
    obj: Any  # core.generator.Generator or core.gaussians.GaussianSet
    random_weights: bool = False


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


class RenderWorker:
    """Daemon thread serving render requests; see the module docstring. Use as a context manager or call
    :meth:`close`."""

    def __init__(self, name: str = "render-worker") -> None:
        self._cond = threading.Condition()
        self._pending: tuple[int, RenderParams] | None = None
        self._generation = 0
        self._latest: RenderResult | None = None
        self._closed = False
        self._models: OrderedDict[tuple, _Model] = OrderedDict()
        self._scenes: OrderedDict[tuple, Any] = OrderedDict()
        self._edited: tuple[tuple, Any, Any] | None = None  # (key, edited GaussianSet, SplatArrays or None)
        self._memory: dict[str, Any] = {}  # "memory:<name>" sources: generators handed over by the app
        self.synthesis_count = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI-thread API

    def submit(self, params: RenderParams) -> int:
        """Queue ``params``, replacing any request not yet started; return its generation (never blocks)."""
        if not isinstance(params, RenderParams):
            raise TypeError(f"submit() takes RenderParams, got {type(params).__name__}")
        with self._cond:
            if self._closed:
                raise RuntimeError("the render worker is closed")
            self._generation += 1
            self._pending = (self._generation, params)
            self._cond.notify_all()
            return self._generation

    def latest(self) -> RenderResult | None:
        """The newest finished result, or None before the first (never blocks)."""
        with self._cond:
            return self._latest

    def wait(self, generation: int, timeout: float | None = None) -> RenderResult | None:
        """Block until a result of at least ``generation`` is published (scripts and tests; not the GUI)."""
        with self._cond:
            self._cond.wait_for(lambda: (self._latest is not None and self._latest.generation >= generation)
                                or not self._thread.is_alive(), timeout)
            return self._latest

    def put_model(self, name: str, generator) -> str:
        """Make an in-memory generator (e.g. one tuned by inversion) available as source ``memory:<name>``;
        replacing a name drops its cached scenes. Returns the source string. The caller must not change the
        generator's weights afterwards (hand over a copy)."""
        source = f"memory:{name}"
        with self._cond:
            self._memory[source] = generator
            self._drop_on_next = True
        return source

    def drop_model(self, name: str) -> None:
        with self._cond:
            self._memory.pop(f"memory:{name}", None)
            self._drop_on_next = True

    @property
    def generation(self) -> int:
        """The generation of the newest request submitted."""
        with self._cond:
            return self._generation

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop after the request in progress (pending ones are dropped) and join the thread."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> RenderWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    self._cond.notify_all()
                    return
                generation, params = self._pending
                self._pending = None
            result = self._serve(generation, params)
            with self._cond:
                if self._latest is None or result.generation > self._latest.generation:
                    self._latest = result
                self._cond.notify_all()

    def _serve(self, generation: int, p: RenderParams) -> RenderResult:
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        out: dict[str, Any] = {}
        try:
            image = self._render(p, info, out)
            error = None
        except Exception as exc:  # noqa: BLE001 - the worker boundary: errors become data
            image, error = None, traceback.format_exc()
            if "out of memory" in str(exc).lower():
                self._drop_caches()
                error += "\n(out of GPU memory: caches dropped; try a smaller size or low resolution)"
        stats = RenderStats(total_ms=(time.perf_counter() - t0) * 1e3, synthesis_count=self.synthesis_count,
                            **info)
        return RenderResult(image, stats, error, generation, p, scene=out.get("scene"),
                            splats=out.get("splats"), ws=out.get("ws"))

    def drop_caches(self) -> None:
        """Forget loaded models and scenes at the next request (thread-safe: it runs on the worker)."""
        self._drop_on_next = True

    def _drop_caches(self) -> None:
        self._models.clear()
        self._scenes.clear()
        self._edited = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass

    def _render(self, p: RenderParams, info: dict, out: dict) -> np.ndarray | None:
        import torch

        if getattr(self, "_drop_on_next", False):
            self._drop_on_next = False
            self._drop_caches()
        device = torch.device(p.device)
        timer = _Timer(device)
        gs, ws = self._scene(p, device, info)
        gs, splats = self._edit(p, device, gs, need_splats=p.output == "scene")
        out.update(scene=gs, ws=ws, splats=splats)
        info["synthesis_ms"] = timer.lap()
        info["gaussians"] = int(gs.num_gaussians)
        if p.output == "scene":
            return None
        w, h = p.width, p.height
        if p.low_res:
            w, h = max(1, w // LOW_RES_DIVISOR), max(1, h // LOW_RES_DIVISOR)
        info.update(width=w, height=h, gaussians=int(gs.num_gaussians))
        cams = camera_from_params(p.camera, w, h)
        with torch.no_grad():
            image, backend = _make_image(gs, cams, w, h, p)
        info["backend"] = backend
        info["render_ms"] = timer.lap()
        return image

    def _model(self, source: str, device) -> _Model:
        key = (source, str(device))
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        if source.startswith("memory:"):
            with self._cond:
                G = self._memory.get(source)
            if G is None:
                raise ValueError(f"{source} is no longer available")
            model = _Model("generator", G.to(device).eval())
        else:
            model = _load_source(source, device)
        self._models[key] = model
        while len(self._models) > MAX_MODELS:
            self._models.popitem(last=False)
        return model

    def _scene(self, p: RenderParams, device, info: dict):
        """``(GaussianSet [N], ws [num_ws, w_dim] numpy or None)`` for the request's source and latent."""
        model = self._model(p.source, device)
        info.update(source_kind=model.kind, random_weights=model.random_weights)
        if model.kind == "scene":
            return model.obj, None
        key = (p.source, str(device), p.latent)
        if key in self._scenes:
            self._scenes.move_to_end(key)
            return self._scenes[key]
        gs, ws = _synthesize(model.obj, p.latent, device)
        self.synthesis_count += 1
        info["synthesized"] = True
        self._scenes[key] = (gs, ws)
        while len(self._scenes) > MAX_SCENES:
            self._scenes.popitem(last=False)
        return gs, ws

    def _edit(self, p: RenderParams, device, gs, need_splats: bool):
        """The request's edit stack applied to ``gs`` (cached for the last key), and its OpenGL arrays."""
        key = (p.source, str(device), p.latent, p.edits)
        if self._edited is not None and self._edited[0] == key and self._edited[1] is not None:
            _, edited, splats = self._edited
        else:
            edited, splats = apply_edits(gs, p.edits), None
        if need_splats and splats is None:
            from viewer.gl_splats import splat_arrays  # imports OpenGL: only for the OpenGL display path

            splats = splat_arrays(edited)
        self._edited = (key, edited, splats)
        return edited, splats


class _Timer:
    """Lap timer in ms: perf_counter on the CPU, CUDA events (synchronised) on a CUDA device."""

    def __init__(self, device) -> None:
        import torch

        self._cuda = device.type == "cuda"
        self._torch = torch
        self._t = time.perf_counter()
        if self._cuda:
            self._ev = torch.cuda.Event(enable_timing=True)
            self._ev.record()

    def lap(self) -> float:
        if self._cuda:
            ev = self._torch.cuda.Event(enable_timing=True)
            ev.record()
            ev.synchronize()
            ms = self._ev.elapsed_time(ev)
            self._ev = ev
            return ms
        t = time.perf_counter()
        ms, self._t = (t - self._t) * 1e3, t
        return ms


def _load_source(source: str, device) -> _Model:
    import torch

    if source.startswith("random:"):
        from core.generator import PRESETS, Generator

        preset = source.split(":", 1)[1]
        if source not in RANDOM_SOURCES or preset not in PRESETS:
            raise ValueError(f"unknown built-in source {source!r}; use one of {RANDOM_SOURCES}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the same random generator every time
            G = Generator(PRESETS[preset]).eval()
            wake_layer_scales(G)
        return _Model("generator", G.to(device), random_weights=True)
    from core.regular_file import open_regular  # a FIFO or device is refused, never read (issue 19)

    with open_regular(source, "a .pkl or .ply file") as f:  # FileNotFoundError etc. speak for themselves
        head = f.read(4)
    if head in (b"ply\n", b"ply\r") or source.lower().endswith(".ply"):
        from core.ply import read_ply

        return _Model("scene", read_ply(source, device=device))
    from core.model_files import load_generator

    return _Model("generator", load_generator(source, device=device).generator.eval())


def seed_z(seed: int, z_dim: int):
    """``[1, z_dim]`` standard normal z from a CPU generator seeded with ``seed`` (the viewer's seed -> z rule)."""
    import torch

    return torch.randn(1, z_dim, generator=torch.Generator().manual_seed(int(seed)))


def latent_ws(G, latent: LatentParams, device):
    """``[1, num_ws, w_dim]`` for ``latent`` (see :class:`viewer.state.LatentParams`): explicit latent, seed, or
    the drag plot's bilinear blend of grid latents; then the slider ``offset``."""
    import torch

    c = G.config
    with torch.no_grad():
        if latent.latent is not None and latent.space == "w":
            w = torch.tensor(latent.latent, dtype=torch.float32, device=device)
            if w.numel() % c.w_dim:
                raise ValueError(f"w latent has {w.numel()} numbers, not a multiple of w_dim={c.w_dim}")
            ws = w.reshape(1, -1, c.w_dim)  # G.synthesis checks the count (1 or num_ws)
        elif latent.latent is not None:
            z = torch.tensor(latent.latent, dtype=torch.float32)
            if z.numel() != c.z_dim:
                raise ValueError(f"z latent has {z.numel()} numbers, the generator needs z_dim={c.z_dim}")
            ws = G.map(z.reshape(1, c.z_dim).to(device), truncation_psi=latent.psi, truncation_cutoff=latent.cutoff)
        elif latent.grid_xy is not None:
            ws = _grid_ws(G, latent, device)
        else:
            ws = G.map(seed_z(latent.seed, c.z_dim).to(device), truncation_psi=latent.psi,
                       truncation_cutoff=latent.cutoff)
        if latent.offset is not None:
            off = torch.tensor(latent.offset, dtype=ws.dtype, device=device)
            if off.numel() == c.w_dim:
                ws = ws + off.reshape(1, 1, c.w_dim)
            elif off.numel() == ws[0].numel():
                ws = ws + off.reshape(ws.shape)
            else:
                raise ValueError(f"latent offset has {off.numel()} numbers; expected w_dim={c.w_dim} or "
                                 f"num_ws*w_dim={ws[0].numel()}")
        return ws


def _grid_ws(G, latent: LatentParams, device):
    """Bilinear blend of the 4 grid latents around ``latent.grid_xy`` (z space: blend then map; w: map then
    blend). Grid cell ``(i, j)`` has seed ``seed + i + j * grid_size``."""
    import torch

    n = latent.grid_size
    x = min(max(float(latent.grid_xy[0]), 0.0), n - 1.0)
    y = min(max(float(latent.grid_xy[1]), 0.0), n - 1.0)
    i0, j0 = min(int(x), n - 2), min(int(y), n - 2)
    fx, fy = x - i0, y - j0
    corners = [(i0, j0, (1 - fx) * (1 - fy)), (i0 + 1, j0, fx * (1 - fy)), (i0, j0 + 1, (1 - fx) * fy),
               (i0 + 1, j0 + 1, fx * fy)]
    z = torch.cat([seed_z(latent.seed + i + j * n, G.config.z_dim) for i, j, _ in corners]).to(device)
    weights = torch.tensor([w for _, _, w in corners], dtype=torch.float32, device=device)
    if latent.space == "z":
        zb = (weights[:, None] * z).sum(0, keepdim=True)
        return G.map(zb, truncation_psi=latent.psi, truncation_cutoff=latent.cutoff)
    ws = G.map(z, truncation_psi=latent.psi, truncation_cutoff=latent.cutoff)
    return (weights[:, None, None] * ws).sum(0, keepdim=True)


def wake_layer_scales(G, std: float = 0.5) -> None:
    """Give a freshly initialised generator's zero-initialised layers (the transformer's layer scales, which make
    every block start as the identity) small random weights, so that, for a random-weight test source, the head
    depends on the latent. A trained generator is never touched."""
    import torch

    with torch.no_grad():
        for p in G.parameters():
            if p.dim() == 2 and not p.any():
                p.normal_(0.0, std)


def _synthesize(G, latent: LatentParams, device):
    """``(GaussianSet [N], ws [num_ws, w_dim] float32 numpy)`` for ``latent``."""
    import torch

    with torch.no_grad():
        ws = latent_ws(G, latent, device)
        return G.synthesis(ws).gaussians[0], ws[0].float().cpu().numpy()


def apply_edits(gs, edits):
    """``gs`` with the Edit panel's stack (``EditSpec`` tuple) applied in order via ``core.edit_ops``."""
    if not edits:
        return gs
    from viewer.edit_catalog import edit_from_spec

    for spec in edits:
        gs = edit_from_spec(spec).apply(gs)
    return gs


def _make_image(gs, cams, w: int, h: int, p: RenderParams) -> tuple[np.ndarray, str]:
    """``([h, w, 3] uint8, backend)`` for ``p.mode``."""
    import torch

    from core.render import render

    if p.splat_scale != 1.0:
        gs = type(gs)(gs.means, gs.quats, gs.log_scales + math.log(p.splat_scale), gs.opacity_logits, gs.sh)
    if p.mode == "centres":
        return _centres_image(gs, cams, w, h, p.background), "points"
    bg = p.background if p.mode == "rgb" else None
    out = render(gs, cams.to(gs.device), w, h, background=bg, mode="rgb+depth" if p.mode == "depth" else "rgb")
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

    cams = cams.to(gs.device)
    viewmat = cams.world_to_camera()
    K = cams.pixel_intrinsics(w, h)
    x = gs.means @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = x[:, 2]
    uv = (x @ K.T)[:, :2] / z.clamp_min(1e-6)[:, None]
    col = (0.5 + SH_C0 * gs.sh[:, 0, :]).clamp(0.0, 1.0)
    u, v = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    keep = (z > 1e-3) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    order = torch.argsort(z[keep], descending=True)  # far first, near overwrites
    img = np.empty((h, w, 3), np.float32)
    img[:] = background
    # numpy fancy assignment: the last of repeated indices wins, so the nearest dot ends on top
    img[v[keep][order].cpu().numpy(), u[keep][order].cpu().numpy()] = col[keep][order].float().cpu().numpy()
    return _to_uint8(torch.from_numpy(img))
