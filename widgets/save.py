"""Save panel: the edited Gaussians as a standard 3DGS .ply, the view as .png, the latent as a saved-latents file
(``.latents.npz``, the studio's one latent format; and load one back). Files go to ``<folder>/<stem>_<n>.<ext>`` with the next free ``n``; nothing is overwritten."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.actions import LoadLatent, SaveImage, SaveLatent, SavePly
from ui_state.ui import UiState
from widgets.layout import item_width, job_line


def draw(ui: UiState) -> None:
    s = ui.save
    item_width()
    _, s.folder = imgui.input_text("folder##save", s.folder)
    item_width()
    _, s.stem = imgui.input_text("file stem##save", s.stem)
    stem = f"{s.folder.rstrip('/') or '.'}/{s.stem or 'head'}"
    if imgui.button("Save .ply"):
        ui.request(SavePly(f"{stem}.ply"))
    imgui.set_item_tooltip("The Gaussians on screen, edits applied, in the standard 3DGS layout")
    imgui.same_line()
    if imgui.button("Save image"):
        ui.request(SaveImage(f"{stem}.png"))
    imgui.set_item_tooltip("The current view at the Render panel's full size")
    imgui.same_line()
    imgui.begin_disabled(ui.info.current_ws is None)
    if imgui.button("Save latent"):
        ui.request(SaveLatent(f"{stem}.latents.npz"))
    imgui.end_disabled()
    item_width()
    entered, s.latent_path = imgui.input_text("latents file##load", s.latent_path,
                                              imgui.InputTextFlags_.enter_returns_true)
    imgui.same_line()
    if (imgui.button("Load##latent") or entered) and s.latent_path.strip():
        ui.request(LoadLatent(s.latent_path.strip()))
    for name in ("save_ply", "save_image", "save_latent", "load_latent"):
        job_line(ui.info.jobs.get(name))
