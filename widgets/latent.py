"""Latent panel: seed, truncation, W/Z, the drag plot over a grid of latents, and saved latents (restore,
interpolate, reset)."""

from __future__ import annotations

from dataclasses import replace

from imgui_bundle import imgui, implot

from ui_state.render import LatentParams
from ui_state.actions import DeleteLatent, InterpolateLatents, RestoreLatent, SaveCurrentLatent
from ui_state.ui import UiState
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
    saved = ui.info.saved_latents
    imgui.separator_text("Saved latents")
    item_width()
    _, s.save_name = imgui.input_text("name##latent", s.save_name)
    imgui.same_line()
    imgui.begin_disabled(ui.info.current_ws is None)
    if imgui.button("Save##latent") and s.save_name.strip():
        ui.request(SaveCurrentLatent(s.save_name.strip()))
        s.save_name = f"latent {len(saved) + 2}"
    imgui.end_disabled()
    for i, item in enumerate(saved):
        imgui.push_id(f"saved{i}")
        if item.texture:
            imgui.image(imgui.ImTextureRef(item.texture), imgui.ImVec2(40, 40))
            imgui.same_line()
        imgui.text(item.name)
        imgui.same_line()
        if imgui.small_button("restore"):
            ui.request(RestoreLatent(item.name))
        imgui.same_line()
        if imgui.small_button("delete"):
            ui.request(DeleteLatent(item.name))
        imgui.pop_id()
    if len(saved) >= 2:
        names = [item.name for item in saved]
        if s.interp_a not in names:
            s.interp_a = names[0]
        if s.interp_b not in names:
            s.interp_b = names[1]
        item_width()
        a = imgui.combo("from", names.index(s.interp_a), names)[1]
        item_width()
        b = imgui.combo("to", names.index(s.interp_b), names)[1]
        s.interp_a, s.interp_b = names[a], names[b]
        item_width()
        changed, s.interp_t = imgui.slider_float("blend", s.interp_t, 0.0, 1.0, "%.2f")
        if changed or imgui.small_button("interpolate"):
            ui.request(InterpolateLatents(s.interp_a, s.interp_b, s.interp_t))
