"""The render worker's models and caches (used on the worker thread only, except where a method says so).

- loaded sources per ``(source, device)`` (:func:`core.latent.load_source`), and in-memory generators handed over
  as ``memory:<name>`` (e.g. an inversion's tuned copy);
- generated scenes per ``(source, device, latent, sliders)`` with the base and edited ``ws``;
- the last edited scene (and its OpenGL arrays) per ``(..., edits)``;
- the slider directions per source, with the version the GUI put in the request.

:class:`GpuAccess` is what GPU jobs get (``JobRunner.start_on_worker``): the same cached generators the view
uses, so no job loads a second copy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ui_state.render import RenderParams

MAX_MODELS = 2  # loaded models kept (per source and device)
MAX_SCENES = 4  # generated scenes kept (per source, device, latent and sliders)
MEMORY_PREFIX = "memory:"
MAX_DIRECTION_SETS = 4


@dataclass(frozen=True, eq=False)
class Scene:
    """A generated (or loaded) scene: ``gaussians`` batch shape ``[]``; ``ws`` / ``base_ws``: ``[num_ws, w_dim]``
    float32 numpy with and without the sliders (None for a ``.ply``)."""

    gaussians: Any
    ws: np.ndarray | None = None
    base_ws: np.ndarray | None = None


class ModelCache:
    """See the module docstring. ``synthesis_count``: how many times a generator ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _memory and _directions, which the GUI thread writes
        self._memory: dict[str, Any] = {}
        self._directions: OrderedDict[tuple[str, int], Any] = OrderedDict()  # (source, version) -> set
        self._loaded: OrderedDict[tuple, Any] = OrderedDict()  # core.latent.LoadedSource
        self._scenes: OrderedDict[tuple, Scene] = OrderedDict()
        self._edited: tuple[tuple, Any, Any] | None = None  # (key, edited GaussianSet, SplatArrays or None)
        self._drop_requested = False
        self._stale: set[str] = set()  # sources whose cached model and scenes must go before the next use
        self.synthesis_count = 0

    # ------------------------------------------------------------------ any thread

    def put_memory(self, name: str, generator) -> str:
        """Make ``generator`` available as source ``memory:<name>`` (replacing drops its cached scenes)."""
        source = MEMORY_PREFIX + name
        with self._lock:
            self._memory[source] = generator
            self._stale.add(source)
        return source

    def drop_memory(self, name: str) -> None:
        with self._lock:
            self._memory.pop(MEMORY_PREFIX + name, None)
            self._stale.add(MEMORY_PREFIX + name)

    def set_directions(self, source: str, version: int, directions) -> None:
        """The slider directions of ``source`` (``core.editing.DirectionSet``), as request version ``version``."""
        with self._lock:
            self._directions[(source, version)] = directions
            while len(self._directions) > MAX_DIRECTION_SETS:  # older versions may still be in flight
                self._directions.popitem(last=False)

    def request_drop(self) -> None:
        """Forget every cached model and scene before the next request."""
        with self._lock:
            self._drop_requested = True

    # ------------------------------------------------------------------ worker thread

    def drop_if_requested(self) -> None:
        """Apply what other threads asked for: forget everything, or the sources whose memory model changed."""
        with self._lock:
            drop, self._drop_requested = self._drop_requested, False
            stale, self._stale = self._stale, set()
        if drop:
            self.drop()
        for cache in (self._loaded, self._scenes):
            for key in [k for k in cache if k[0] in stale]:
                del cache[key]
        if self._edited is not None and self._edited[0][0] in stale:
            self._edited = None

    def drop(self) -> None:
        self._loaded.clear()
        self._scenes.clear()
        self._edited = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass

    def load(self, source: str, device):
        """The ``core.latent.LoadedSource`` of ``source`` on ``device`` (cached)."""
        from core.latent import LoadedSource, load_source

        self.drop_if_requested()
        key = (source, str(device))
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if source.startswith(MEMORY_PREFIX):
            with self._lock:
                G = self._memory.get(source)
            if G is None:
                raise ValueError(f"{source} is no longer available")
            loaded = LoadedSource("generator", G.to(device).eval())
        else:
            loaded = load_source(source, device)
        self._loaded[key] = loaded
        while len(self._loaded) > MAX_MODELS:
            self._loaded.popitem(last=False)
        return loaded

    def generator(self, source: str, device):
        """The cached generator of ``source``; ``ValueError`` for a ``.ply`` scene."""
        loaded = self.load(source, device)
        if loaded.generator is None:
            raise ValueError(f"{source} is a .ply scene; this needs a generator (a generator file or random:*)")
        return loaded.generator

    def scene(self, p: RenderParams, device) -> tuple[Scene, bool]:
        """``(Scene, synthesized now)`` for the request's source, latent and sliders."""
        from viewer.viewport.requests import latent_ws, with_sliders

        loaded = self.load(p.source, device)
        if loaded.kind == "scene":
            return Scene(loaded.scene), False
        key = (p.source, str(device), p.latent, p.sliders)
        if key in self._scenes:
            self._scenes.move_to_end(key)
            return self._scenes[key], False
        import torch

        G = loaded.generator
        with torch.no_grad():
            base = latent_ws(G, p.latent, device)
            ws = with_sliders(base, p.sliders, self._directions_for(p))
            gs = G.synthesis(ws).gaussians[0]
        self.synthesis_count += 1
        scene = Scene(gs, _numpy_ws(ws, G.config.num_ws), _numpy_ws(base, G.config.num_ws))
        self._scenes[key] = scene
        while len(self._scenes) > MAX_SCENES:
            self._scenes.popitem(last=False)
        return scene, True

    def _directions_for(self, p: RenderParams):
        if not p.sliders.values:
            return None
        with self._lock:
            directions = self._directions.get((p.source, p.sliders.directions))
        if directions is None:
            raise ValueError(f"the sliders' directions (version {p.sliders.directions}) are not loaded for "
                             f"{p.source}")
        return directions

    def edited(self, p: RenderParams, device, gs, need_splats: bool):
        """``(edited GaussianSet, SplatArrays or None)``: the request's edits on ``gs``, cached for the last key."""
        from viewer.viewport.requests import apply_edits

        key = (p.source, str(device), p.latent, p.sliders, p.edits)
        if self._edited is not None and self._edited[0] == key:
            _, edited, splats = self._edited
        else:
            edited, splats = apply_edits(gs, p.edits), None
        if need_splats and splats is None:
            from viewer.viewport.splats import splat_arrays

            splats = splat_arrays(edited)
        self._edited = (key, edited, splats)
        return edited, splats


def _numpy_ws(ws, num_ws: int) -> np.ndarray:
    """``[1, 1 or num_ws, w_dim]`` tensor -> ``[num_ws, w_dim]`` float32 numpy (one w repeated per slot)."""
    out = ws[0].float().cpu().numpy()
    return np.ascontiguousarray(np.broadcast_to(out, (num_ws, out.shape[-1]))) if out.shape[0] == 1 else out


class GpuAccess:
    """What a GPU job (``JobRunner.start_on_worker``) may use, on the worker thread: the worker's own cached
    generators and the in-memory model slots."""

    def __init__(self, cache: ModelCache) -> None:
        self._cache = cache

    def generator(self, source: str, device: str):
        """The generator the view uses for ``source`` on ``device`` (do not change its weights: copy first)."""
        import torch

        return self._cache.generator(source, torch.device(device))

    def open_source(self, source: str, device: str) -> str:
        """Load ``source`` into the view's cache, as the next render request would; its kind ("generator" or
        "scene"). Raises what loading raises (a corrupt or unknown file)."""
        import torch

        return self._cache.load(source, torch.device(device)).kind

    def put_memory_model(self, name: str, generator) -> str:
        """Show-able as source ``memory:<name>``; hand over a copy the job no longer changes."""
        return self._cache.put_memory(name, generator)

    def drop_memory_model(self, name: str) -> None:
        self._cache.drop_memory(name)
