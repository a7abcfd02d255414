"""Inversion panel: photos (files or webcam) -> preprocessing (aligned crops, landmarks, estimated cameras)
-> stage 1 latent inversion -> stage 2 generator tuning -> save everything, with live loss plots; the view
follows the optimisation. Edits ``ui.inversion.panel`` and queues the inversion actions of ``ui_state.actions``;
never runs model work."""

from __future__ import annotations

import numpy as np
from imgui_bundle import imgui, implot

from ui_state.actions import (
    BrowsePhotos, ClearPhotos, LoadPhotos, Preprocess, ResetModel, SaveInversion, StartLatentSearch,
    StartTuning, StopLatentSearch, StopTuning, TakeWebcamPicture,
)
from ui_state.inversion import (
    FRAMINGS, OFFLINE_LABEL, SPACES, STAND_IN_LABEL, WEIGHTS_DIR_LABEL, InversionInfo, StageForm, split_paths,
)
from ui_state.ui import UiState
from widgets import inversion_presets
from widgets.inversion_presets import duration
from widgets.layout import ERROR_RGBA, OK_RGBA, WARNING_RGBA, colored_text, item_width

PLOT_HEIGHT = 150.0
PREVIEW_WIDTH = 240.0
TERMS = ("mse", "ssim", "lpips", "id", "geometry", "hidden", "views", "locality")  # plotted as weight * term,
# next to the total they add up to
LEVEL_RGBA = {"error": ERROR_RGBA, "warning": WARNING_RGBA}


def draw(ui: UiState) -> None:
    state = ui.inversion
    p, info = state.panel, state.info
    busy = info.running
    _photos(ui, info)
    imgui.separator_text("2. Preprocess")
    imgui.text("framing")
    for name in FRAMINGS:
        imgui.same_line()
        if imgui.radio_button(f"{name}##framing", p.framing == name):
            p.framing = name
    imgui.begin_disabled(busy or not info.photos)
    if imgui.button("Preprocess"):
        ui.request(Preprocess())
    imgui.end_disabled()
    _stage_line(ui, info, "preprocess", "inversion_preprocess")
    _thumbs(info)
    imgui.separator_text("3. Latent inversion")
    inversion_presets.draw(ui)
    note = info.weights_note
    if note is not None:
        if note.level == "error":
            colored_text(WARNING_RGBA, note.text)
        else:
            imgui.push_text_wrap_pos(0.0)
            imgui.text_disabled(note.text)
            imgui.pop_text_wrap_pos()
    _, p.offline = imgui.checkbox(OFFLINE_LABEL, p.offline)
    imgui.set_item_tooltip("Without this, a missing LPIPS/ID weight file is downloaded on first use from its "
                           "published address into the torch cache (hash-checked).")
    _, p.stand_in_losses = imgui.checkbox(STAND_IN_LABEL, p.stand_in_losses)
    imgui.set_item_tooltip("Missing LPIPS/ID weight files are replaced by untrained networks: the run works "
                           "but its losses mean nothing perceptually. For tests only.")
    item_width()
    _, p.weights_dir = imgui.input_text(WEIGHTS_DIR_LABEL, p.weights_dir)
    imgui.set_item_tooltip("Extra folder searched for the pretrained loss weights (before the torch caches)")
    imgui.push_id("stage1")
    _form(p.latent)
    imgui.text("space")
    imgui.push_id("space")
    for value in SPACES:
        imgui.same_line()
        if imgui.radio_button(value.upper(), p.space == value):
            p.space = value
    imgui.pop_id()
    _, p.refine_cameras = imgui.checkbox("refine cameras", p.refine_cameras)
    item_width()
    _, p.follow_every = imgui.input_int("show every (steps)", p.follow_every)
    p.follow_every = max(1, p.follow_every)
    _start_stop(ui, info, "latent", StartLatentSearch(), StopLatentSearch(), info.has_target)
    _stage_line(ui, info, "latent", "inversion_latent")
    _plot("stage 1 losses", info.latent_history, info.latent_weights)
    imgui.pop_id()
    imgui.separator_text("4. Generator tuning")
    imgui.push_id("stage2")
    _form(p.tuning)
    item_width()
    _, p.locality_weight = imgui.input_double("locality weight", p.locality_weight, 0.01, 0.1, "%.3f")
    p.locality_weight = max(0.0, p.locality_weight)
    item_width()
    _, p.publish_every = imgui.input_int("show every (steps)", p.publish_every)
    p.publish_every = max(1, p.publish_every)
    _start_stop(ui, info, "tuning", StartTuning(), StopTuning(), info.has_latent)
    _stage_line(ui, info, "tuning", "inversion_tuning")
    _plot("stage 2 losses", info.tuning_history, info.tuning_weights)
    imgui.pop_id()
    imgui.separator_text("5. Results")
    item_width()
    _, p.output = imgui.input_text("output folder", p.output)
    item_width()
    _, p.orbit_frames = imgui.input_int("orbit video frames", p.orbit_frames)
    p.orbit_frames = max(0, p.orbit_frames)
    imgui.begin_disabled(busy or not info.has_latent)
    if imgui.button("Save everything"):
        ui.request(SaveInversion())
    imgui.end_disabled()
    imgui.set_item_tooltip("Everything python -m inversion writes: the aligned photos, cameras, the latent, the tuned "
                           "generator, the head as .ply, renders, the orbit video and the report. If the folder "
                           "already holds results, a new one (name_2, ...) is used.")
    imgui.same_line()
    imgui.begin_disabled(not info.tuned_active)
    if imgui.button("Reset to original model"):
        ui.request(ResetModel())
    imgui.end_disabled()
    _stage_line(ui, info, "saving", "inversion_save")
    if info.tuned_active:
        colored_text(OK_RGBA, "The view shows the tuned generator (memory:tuned).")
    if info.saved_to:
        imgui.text_wrapped(f"last saved: {info.saved_to}")
    if info.loss_sources:
        imgui.text_disabled("loss networks: " + ", ".join(f"{k}: {v}" for k, v in info.loss_sources.items()))
    for m in info.messages[-8:]:
        rgba = LEVEL_RGBA.get(m.level)
        if rgba:
            colored_text(rgba, m.text)
        else:
            imgui.text_wrapped(m.text)


def _photos(ui: UiState, info: InversionInfo) -> None:
    p = ui.inversion.panel
    imgui.separator_text("1. Photos")
    item_width()
    entered, p.paths = imgui.input_text("photos", p.paths, imgui.InputTextFlags_.enter_returns_true)
    imgui.set_item_tooltip("One or several photos of one person; separate paths with ';'")
    if (imgui.button("Add photos") or entered) and split_paths(p.paths):
        ui.request(LoadPhotos(tuple(split_paths(p.paths))))
    imgui.same_line()
    if imgui.button("Browse..."):
        ui.request(BrowsePhotos())
    imgui.same_line()
    imgui.begin_disabled(not info.photos or info.running)
    if imgui.button("Clear"):
        ui.request(ClearPhotos())
    imgui.end_disabled()
    if info.photos:
        imgui.text_wrapped(f"inputs ({len(info.photos)}): " + ", ".join(info.photos))
    else:
        imgui.text_disabled("no inputs yet")
    p.webcam_open = imgui.tree_node("Webcam")
    if p.webcam_open:
        if info.webcam_texture:
            w, h = info.webcam_size
            scale = PREVIEW_WIDTH / max(1, w)
            imgui.image(imgui.ImTextureRef(info.webcam_texture), imgui.ImVec2(w * scale, h * scale))
        if info.webcam_status:
            level = "info" if info.webcam_status.startswith("opening") else "error"
            colored_text(LEVEL_RGBA.get(level, OK_RGBA), info.webcam_status)
        imgui.begin_disabled(not info.webcam_texture)
        if imgui.button("Take picture"):
            ui.request(TakeWebcamPicture())
        imgui.end_disabled()
        imgui.tree_pop()


def _thumbs(info: InversionInfo) -> None:
    for i, t in enumerate(info.thumbs):
        if i % 3:
            imgui.same_line()
        imgui.begin_group()
        if t.texture:
            imgui.image(imgui.ImTextureRef(t.texture), imgui.ImVec2(*t.size))
        imgui.text(t.name[:16])
        imgui.text_disabled(f"yaw {t.yaw_deg:+.0f} pitch {t.pitch_deg:+.0f}")
        imgui.end_group()
        if t.note:
            imgui.set_item_tooltip(t.note)


def _form(f: StageForm) -> None:
    """One stage's form. Doubles (not ImGui's 32-bit floats), so a preset's values stay exactly the pipeline's."""
    item_width()
    f.id_weight = max(0.0, imgui.input_double("ID weight", f.id_weight, 0.01, 0.1, "%.3f")[1])
    item_width()
    f.mse_weight = max(0.0, imgui.input_double("MSE weight", f.mse_weight, 0.01, 0.1, "%.3f")[1])
    item_width()
    f.lpips_weight = max(0.0, imgui.input_double("LPIPS weight", f.lpips_weight, 0.01, 0.1, "%.3f")[1])
    item_width()
    f.ssim_weight = max(0.0, imgui.input_double("SSIM weight", f.ssim_weight, 0.01, 0.1, "%.3f")[1])
    imgui.set_item_tooltip("weight of 1 - SSIM (structural similarity; needs no download)")
    item_width()
    _, f.lr = imgui.input_double("learning rate", f.lr, 0.0, 0.0, "%.4g")
    f.lr = max(1e-7, f.lr)
    item_width()
    _, f.steps = imgui.input_int("steps", f.steps)
    f.steps = max(1, f.steps)
    item_width()
    _, f.batch_size = imgui.input_int("batch size", f.batch_size)
    f.batch_size = max(1, f.batch_size)


def _start_stop(ui: UiState, info: InversionInfo, stage: str, start, stop, ready: bool) -> None:
    imgui.begin_disabled(info.running or not ready)
    if imgui.button("Start"):
        ui.request(start)
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(info.stage != stage)
    if imgui.button("Stop"):
        ui.request(stop)
    imgui.end_disabled()


def _stage_line(ui: UiState, info: InversionInfo, stage: str, job: str) -> None:
    """The stage's progress while it runs, and its newest problem right under its buttons."""
    status = ui.info.jobs.get(job)
    if info.stage == stage and status is not None and status.running:
        text = status.message or stage
        if stage in ("latent", "tuning") and info.total_steps:
            text = f"step {info.step}/{info.total_steps}"
            if info.eta_s is not None:
                text += f", about {duration(info.eta_s)} left"
        imgui.progress_bar(status.progress, imgui.ImVec2(-1, 0), text)
    note = info.stage_notes.get(stage)
    if note is not None:
        colored_text(LEVEL_RGBA.get(note.level, OK_RGBA), note.text)


def plot_series(history: dict, weights: dict) -> list[tuple[str, np.ndarray]]:
    """``[(label, values)]`` the loss plot draws: the total, then each term times its weight (terms with weight 0
    are not drawn), so every weighted part lies below the total it adds up to."""
    out = []
    if history.get("total") is not None and history["total"].size:
        out.append(("total", history["total"]))
    for term in TERMS:
        y, w = history.get(term), weights.get(term, 0.0)
        if y is not None and y.size and w > 0:
            out.append((f"{term} x {w:g}", w * y))
    return out


def _plot(title: str, history: dict, weights: dict) -> None:
    series = plot_series(history, weights)
    if not series:
        return
    if implot.begin_plot(title, imgui.ImVec2(-1, PLOT_HEIGHT), implot.Flags_.no_menus):
        implot.setup_axes("step", "weighted loss", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        for label, y in series:
            x = np.arange(1, y.size + 1, dtype=np.float64)
            ok = np.isfinite(y)
            if ok.any():
                implot.plot_line(label, np.ascontiguousarray(x[ok]), np.ascontiguousarray(y[ok]))
        implot.end_plot()
