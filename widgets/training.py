"""Training panel: start ``python -m training`` with chosen options (or attach to a run directory), follow its
progress, losses and image grids from the run's own files, load its snapshots, and stop it cleanly."""

from __future__ import annotations

import numpy as np
import shlex

from imgui_bundle import imgui, implot

from ui_state.actions import AttachRun, LoadSnapshot, StartTraining, StopTraining
from ui_state.training import TrainingLaunch
from ui_state.ui import UiState
from widgets.layout import ERROR_RGBA, colored_text, item_width, radio_row

DEVICES = ("auto", "cpu", "cuda")
PLOTTED = ("G_adv", "D_fake", "D_real", "D_r1")
GRID_WIDTH = 360.0


def draw(ui: UiState) -> None:
    s, info = ui.training, ui.info.training
    running = info.status in ("starting", "running")
    if imgui.tree_node_ex("New run", imgui.TreeNodeFlags_.default_open if not info.run_dir else 0):
        _form(ui, running)
        imgui.tree_pop()
    item_width()
    entered, s.attach_dir = imgui.input_text("run dir##attach", s.attach_dir, imgui.InputTextFlags_.enter_returns_true)
    imgui.same_line()
    if (imgui.button("Attach") or entered) and s.attach_dir.strip():
        ui.request(AttachRun(s.attach_dir.strip()))
    imgui.set_item_tooltip("Follow a run started elsewhere (its folder under --outdir)")
    if not info.run_dir and not info.status:
        return
    imgui.separator_text("Run")
    imgui.text_wrapped(info.run_dir or "(waiting for the run to create its folder)")
    imgui.text(f"status: {info.status}{' (started here)' if info.launched else ''}"
               f"{'  - stop requested' if info.stop_requested else ''}")
    frac = info.kimg / info.total_kimg if info.total_kimg else 0.0
    eta = f"ETA {info.eta_s / 60:.1f} min" if running and info.eta_s else ""
    imgui.progress_bar(min(1.0, frac), imgui.ImVec2(-1, 0),
                       f"{info.kimg:.2f} / {info.total_kimg:g} kimg  {info.sec_per_kimg:.1f} s/kimg  {eta}")
    imgui.begin_disabled(not (running and info.run_dir) or info.stop_requested)
    if imgui.button("Stop (save snapshot)"):
        ui.request(StopTraining())
    imgui.end_disabled()
    imgui.same_line()
    imgui.begin_disabled(not info.snapshots)
    if imgui.button("Load latest snapshot"):
        ui.request(LoadSnapshot(""))
    imgui.end_disabled()
    imgui.same_line()
    _, s.follow = imgui.checkbox("follow training", s.follow)
    imgui.set_item_tooltip("Open every new snapshot in the viewer as it is written")
    if info.error:
        colored_text(ERROR_RGBA, info.error.strip().splitlines()[-1] if info.error.strip() else info.error)
    _plots(info.series)
    if info.grid_texture:
        w, h = info.grid_size
        scale = min(1.0, GRID_WIDTH / max(1, w))
        imgui.text_disabled(info.grid_name)
        imgui.image(imgui.ImTextureRef(info.grid_texture), imgui.ImVec2(w * scale, h * scale))
    if info.snapshots and imgui.tree_node(f"Snapshots ({len(info.snapshots)})"):
        for name in reversed(info.snapshots):
            if imgui.selectable(name, False)[0]:
                ui.request(LoadSnapshot(name))
        imgui.tree_pop()
    if info.log_tail and imgui.tree_node("Log"):
        imgui.text_unformatted(info.log_tail)
        imgui.tree_pop()


def _form(ui: UiState, running: bool) -> None:
    s = ui.training
    item_width()
    _, s.data = imgui.input_text("dataset", s.data)
    item_width()
    _, s.outdir = imgui.input_text("output folder", s.outdir)
    s.preset = radio_row("preset", ui.info.generator_presets or (s.preset,), s.preset, per_line=4)
    item_width()
    _, s.batch = imgui.input_int("batch", s.batch)
    item_width()
    _, s.batch_gpu = imgui.input_int("batch per GPU", s.batch_gpu)
    item_width()
    _, s.gpus = imgui.input_int("GPUs", s.gpus)
    item_width()
    _, s.kimg = imgui.input_float("kimg", s.kimg, 10.0, 100.0, "%.1f")
    item_width()
    _, s.snap_kimg = imgui.input_float("snapshot every (kimg)", s.snap_kimg, 1.0, 10.0, "%.2f")
    item_width()
    _, s.image_snap_kimg = imgui.input_float("grid every (kimg)", s.image_snap_kimg, 1.0, 10.0, "%.2f")
    s.device = radio_row("device", DEVICES, s.device, per_line=4)
    item_width()
    _, s.resume = imgui.input_text("resume from", s.resume)
    imgui.set_item_tooltip("A run directory or one of its snapshots (.safetensors, .index.json): continue that "
                           "run, with its other settings; empty = new run")
    item_width()
    _, s.extra = imgui.input_text("more options", s.extra)
    imgui.set_item_tooltip("Further options of python -m training, e.g. --gamma 0.3 --num-views 2 (see --help); "
                           "they override the fields above")
    imgui.begin_disabled(running)
    if imgui.button("Start training"):
        try:
            ui.request(StartTraining(TrainingLaunch.from_form(s, extra=tuple(shlex.split(s.extra)))))
        except ValueError as e:
            ui.info.say(f"cannot start training: {e}", "error")
    imgui.end_disabled()


def _plots(series: dict) -> None:
    kimg = series.get("kimg")
    if kimg is None or kimg.size < 1:
        return
    if implot.begin_plot("losses", imgui.ImVec2(-1, 170), implot.Flags_.no_menus):
        implot.setup_axes("kimg", "", implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        for key in PLOTTED:
            y = series.get(key)
            if y is not None and y.size == kimg.size:
                ok = np.isfinite(y)
                if ok.any():
                    implot.plot_line(key, np.ascontiguousarray(kimg[ok]), np.ascontiguousarray(y[ok]))
        implot.end_plot()

