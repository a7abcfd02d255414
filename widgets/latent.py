"""Latent panel: seed, truncation, W/Z, the drag plot over a grid of latents, and saved latents (restore,
interpolate, reset)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from imgui_bundle import imgui, implot

from viewer.state.render import LatentParams
from viewer.state.ui import SavedLatent, UiState
from widgets import latent_sliders
from widgets.layout import item_width

SPACES = ("z", "w")
PLOT_SIZE = 220.0


def draw(ui: UiState) -> None:
    s = ui.latent
    lat = s.latent
    item_width()
    _, seed = imgui.input_int("seed", lat.seed)
    item_width()
    _, psi = imgui.slider_float("truncation psi", lat.psi, 0.0, 1.5, "%.2f")
    item_width()
    _, cutoff = imgui.input_int("cutoff (0 = all)", lat.cutoff or 0)
    item_width()
    _, space = imgui.combo("space", SPACES.index(lat.space), SPACES)
    lat = replace(lat, seed=max(0, seed), psi=psi, cutoff=max(0, cutoff) or None, space=SPACES[space])
    _, s.use_grid = imgui.checkbox("drag plot", s.use_grid)
    imgui.set_item_tooltip(f"Blend a {lat.grid_size}x{lat.grid_size} grid of seeds (seed + i + j * n) "
                           "bilinearly: drag the point")
    if s.use_grid:
        lat = _drag_plot(lat)
    elif lat.grid_xy is not None:
        lat = replace(lat, grid_xy=None)
    s.latent = lat
    if lat.latent is not None:
        imgui.text_disabled(f"explicit {lat.space} latent ({len(lat.latent)} numbers)")
        imgui.same_line()
        if imgui.small_button("use seed"):
            s.latent = replace(lat, latent=None)
    if imgui.button("Reset latent"):
        s.latent = LatentParams()
        s.use_grid = False
        s.sliders.clear()
    latent_sliders.draw(ui)
    _saved(ui)


def _drag_plot(lat: LatentParams) -> LatentParams:
    n = lat.grid_size
    x, y = lat.grid_xy if lat.grid_xy is not None else ((n - 1) / 2, (n - 1) / 2)
    flags = implot.Flags_.no_legend | implot.Flags_.no_menus | implot.Flags_.no_box_select
    if implot.begin_plot("##latent_grid", imgui.ImVec2(PLOT_SIZE, PLOT_SIZE), flags):
        implot.setup_axes_limits(-0.5, n - 0.5, -0.5, n - 0.5, imgui.Cond_.always)
        _, x, y, *_ = implot.drag_point(0, float(x), float(y), imgui.ImVec4(1, 1, 1, 1), 6.0)
        implot.end_plot()
    x, y = min(max(x, 0.0), n - 1.0), min(max(y, 0.0), n - 1.0)
    return replace(lat, grid_xy=(round(x, 4), round(y, 4)), latent=None)


def _saved(ui: UiState) -> None:
    s = ui.latent
    imgui.separator_text("Saved latents")
    item_width()
    _, s.save_name = imgui.input_text("name##latent", s.save_name)
    imgui.same_line()
    if imgui.button("Save##latent") and s.save_name.strip():
        ws = ui.info.current_ws
        s.saved.append(SavedLatent(s.save_name.strip(), s.latent, ui.info.thumbnail,
                                   None if ws is None else np.array(ws, np.float32), dict(s.sliders)))
        s.save_name = f"latent {len(s.saved) + 1}"
    for i, item in enumerate(list(s.saved)):
        imgui.push_id(f"saved{i}")
        tex = ui.info.thumbnail_textures.get(id(item))
        if tex:
            imgui.image(imgui.ImTextureRef(tex), imgui.ImVec2(40, 40))
            imgui.same_line()
        imgui.text(item.name)
        imgui.same_line()
        if imgui.small_button("restore"):
            s.latent = item.latent
            s.sliders = dict(item.sliders)
            s.use_grid = item.latent.grid_xy is not None
        imgui.same_line()
        if imgui.small_button("delete"):
            s.saved.pop(i)
            imgui.pop_id()
            break
        imgui.pop_id()
    usable = [i for i, item in enumerate(s.saved) if item.ws is not None]
    if len(usable) >= 2:
        names = [s.saved[i].name for i in usable]
        s.interp_a, s.interp_b = min(s.interp_a, len(usable) - 1), min(s.interp_b, len(usable) - 1)
        item_width()
        _, s.interp_a = imgui.combo("from", s.interp_a, names)
        item_width()
        _, s.interp_b = imgui.combo("to", s.interp_b, names)
        item_width()
        changed, s.interp_t = imgui.slider_float("blend", s.interp_t, 0.0, 1.0, "%.2f")
        if changed or imgui.small_button("interpolate"):
            a, b = s.saved[usable[s.interp_a]].ws, s.saved[usable[s.interp_b]].ws
            if a.shape == b.shape:
                w = (1.0 - s.interp_t) * a + s.interp_t * b  # the saved ws include their slider offsets
                s.latent = LatentParams(space="w", latent=tuple(float(v) for v in w.reshape(-1)), psi=1.0)
                s.sliders.clear()
                s.use_grid = False
