"""Placeholder window: proves the GUI stack (glfw + OpenGL + imgui-bundle) works until the real viewer lands.

It shows the app name, a banner saying so, the torch version and compute device (probed on a background
thread, so the window appears before torch has finished importing), the OpenGL renderer, and, when a ``.ply``
path is given, its header summary from ``core.ply.read_ply_header``. Any error is shown as text; nothing here
should crash the window.

Scripted smoke run (e.g. under ``xvfb-run``)::

    python run_viewer.py head.ply --frames 10 --screenshot /tmp/shot.png
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from imgui_bundle import hello_imgui, imgui, immapp  # before anything that could load another libglfw
import imgui_bundle
import tyro

APP_NAME = "SplatHead Studio"
BANNER = "Viewer panels arrive with the viewer issue; this window proves the GUI stack works"
BANNER_RGB = (240, 190, 60)  # opaque amber; the window test looks for these exact pixels
ERROR_RGBA = (1.0, 0.45, 0.4, 1.0)
NOTE_RGBA = (1.0, 0.8, 0.35, 1.0)


@dataclass(frozen=True)
class PlaceholderConfig:
    """SplatHead Studio viewer (placeholder: the viewer panels arrive with the viewer issue)."""

    path: tyro.conf.Positional[Path | None] = None
    """Optional .ply file whose header is summarised."""
    device: str = "auto"
    """Compute device: auto (CUDA if available, else CPU), cpu, cuda or cuda:N."""
    width: int = 1280
    """Window width in pixels."""
    height: int = 800
    """Window height in pixels."""
    frames: int = 0
    """Exit after this many frames once the start-up probe has finished (0: run until the window closes)."""
    screenshot: Path | None = None
    """Save the last frame here as PNG when the window closes (combine with --frames for smoke runs)."""


@dataclass(frozen=True)
class Probe:
    """Result of the background checks; replaced whole, never mutated, so the GUI thread reads it safely."""

    generation: int
    torch_version: str = ""
    device: str = ""
    device_note: str = ""
    ply_lines: tuple[str, ...] = ()
    ply_error: str = ""
    error: str = ""
    seconds: float = 0.0


def describe_device(requested: str) -> tuple[str, str]:
    """(device description, note) for ``requested`` in {auto, cpu, cuda, cuda:N}. Imports torch."""
    import torch

    cuda = torch.cuda.is_available()
    try:
        dev = torch.device(("cuda" if cuda else "cpu") if requested == "auto" else requested)
    except RuntimeError as e:
        return f"CPU (threads: {torch.get_num_threads()})", f"--device {requested!r} is not a device: {e}"
    if dev.type == "cuda":
        if not cuda:
            return (f"CPU (threads: {torch.get_num_threads()})",
                    f"--device {requested} asked for CUDA, but torch.cuda.is_available() is False")
        index = dev.index if dev.index is not None else 0
        if index >= torch.cuda.device_count():
            return "none", f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s)"
        return f"CUDA: {torch.cuda.get_device_name(index)} (cuda:{index})", ""
    if dev.type == "cpu":
        note = "" if cuda or requested != "auto" else "CUDA not available; running on CPU"
        return f"CPU (threads: {torch.get_num_threads()})", note
    return str(dev), ""


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 6:
        parts = [_short(v, 40) for v in (*value[:4], value[-1])]
        text = f"{len(value)} items: {', '.join(parts[:4])}, ..., {parts[-1]}"
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_header(header: Any) -> tuple[str, ...]:
    """Readable lines for whatever ``read_ply_header`` returns (dataclass, mapping, sequence, str, object)."""
    if dataclasses.is_dataclass(header) and not isinstance(header, type):
        items = [(f.name, getattr(header, f.name)) for f in dataclasses.fields(header) if f.repr]
    elif isinstance(header, Mapping):
        items = list(header.items())
    elif isinstance(header, str):
        return tuple(header.splitlines())
    elif isinstance(header, (list, tuple)):
        return tuple(_short(v) for v in header)
    elif hasattr(header, "__dict__"):
        items = [(k, v) for k, v in vars(header).items() if not k.startswith("_")]
    else:
        return (_short(header),)
    return tuple(f"{k}: {_short(v)}" for k, v in items)


def summarize_ply(path: Path) -> tuple[tuple[str, ...], str]:
    """(header lines, error text) for ``path``; never raises."""
    if not path.is_file():
        return (), f"file not found: {path}"
    try:
        from core.ply import read_ply_header  # lazy: core.ply imports torch and is optional for this window
    except Exception as e:  # noqa: BLE001 - shown to the user
        return (), f"cannot load the PLY reader (core.ply): {type(e).__name__}: {e}"
    try:
        return format_header(read_ply_header(path)), ""
    except Exception as e:  # noqa: BLE001 - shown to the user
        return (), f"{type(e).__name__}: {e}"


def run_probe(cfg: PlaceholderConfig, generation: int) -> Probe:
    """Everything slow that the window shows: torch import, device query, PLY header. Never raises."""
    t0 = time.perf_counter()
    try:
        import torch

        device, note = describe_device(cfg.device)
        lines, ply_error = summarize_ply(cfg.path) if cfg.path is not None else ((), "")
        return Probe(generation, torch.__version__, device, note, lines, ply_error,
                     seconds=time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - errors cross the thread boundary as data
        return Probe(generation, error=traceback.format_exc(limit=3), seconds=time.perf_counter() - t0)


class PlaceholderApp:
    """The window's state and per-frame GUI function."""

    def __init__(self, cfg: PlaceholderConfig):
        self.cfg = cfg
        self.probe: Probe | None = None
        self.generation = 0
        self.gl_info = "(not queried yet)"
        self.frames_since_ready = 0
        self.params: hello_imgui.RunnerParams | None = None

    def start_probe(self) -> None:
        """Run :func:`run_probe` on a daemon thread; only the newest generation's result is kept."""
        self.generation += 1
        generation = self.generation

        def work() -> None:
            result = run_probe(self.cfg, generation)
            if generation == self.generation:
                self.probe = result

        threading.Thread(target=work, name="placeholder-probe", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self.probe is not None and self.probe.generation == self.generation

    def query_gl(self) -> None:
        try:
            from OpenGL import GL

            renderer = GL.glGetString(GL.GL_RENDERER).decode()
            version = GL.glGetString(GL.GL_VERSION).decode()
            self.gl_info = f"{renderer}, OpenGL {version}"
        except Exception as e:  # noqa: BLE001
            self.gl_info = f"unavailable ({type(e).__name__}: {e})"

    def gui(self) -> None:
        viewport = imgui.get_main_viewport()
        imgui.set_next_window_pos(viewport.work_pos)
        imgui.set_next_window_size(viewport.work_size)
        wf = imgui.WindowFlags_
        flags = wf.no_decoration | wf.no_move | wf.no_saved_settings
        imgui.begin(APP_NAME, None, flags)
        imgui.text(APP_NAME)
        imgui.same_line()
        imgui.text_disabled("placeholder window")
        self._banner()
        self._environment()
        self._file()
        imgui.spacing()
        if imgui.button("Reload"):
            self.start_probe()
        imgui.set_item_tooltip("Probe torch and re-read the file header")
        imgui.same_line()
        imgui.text_disabled(f"{imgui.get_io().framerate:.0f} fps")
        imgui.end()
        self._count_frames()

    def _banner(self) -> None:
        r, g, b = BANNER_RGB
        imgui.push_style_color(imgui.Col_.child_bg, imgui.ImVec4(r / 255, g / 255, b / 255, 1.0))
        imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(0.08, 0.08, 0.08, 1.0))
        imgui.begin_child("banner", (0, 0), imgui.ChildFlags_.always_use_window_padding
                          | imgui.ChildFlags_.auto_resize_y)
        imgui.text_wrapped(BANNER)
        imgui.end_child()
        imgui.pop_style_color(2)

    def _environment(self) -> None:
        imgui.separator_text("Environment")
        imgui.text(f"Python {platform.python_version()}, imgui-bundle {imgui_bundle.__version__}")
        imgui.text(f"Renderer: {self.gl_info}")
        probe = self.probe
        if probe is None:
            imgui.text("torch: probing (importing torch off the GUI thread)...")
            return
        if probe.error:
            _wrapped(ERROR_RGBA, f"torch probe failed:\n{probe.error}")
            return
        imgui.text(f"torch {probe.torch_version}")
        imgui.text(f"Device: {probe.device}")
        if probe.device_note:
            _wrapped(NOTE_RGBA, probe.device_note)

    def _file(self) -> None:
        imgui.separator_text("File")
        if self.cfg.path is None:
            imgui.text_disabled("No file given. Try: make run ARGS=path/to/head.ply")
            return
        imgui.text(str(self.cfg.path))
        probe = self.probe
        if probe is None or probe.error:
            return
        if probe.ply_error:
            _wrapped(ERROR_RGBA, probe.ply_error)
        for line in probe.ply_lines:
            imgui.bullet_text(line)

    def _count_frames(self) -> None:
        if not self.cfg.frames or not self.ready:
            return
        self.frames_since_ready += 1
        if self.frames_since_ready >= self.cfg.frames:
            hello_imgui.get_runner_params().app_shall_exit = True

    def runner_params(self) -> hello_imgui.RunnerParams:
        """Runner parameters for ``immapp.run`` (or ``immapp.testing.run``): one window, no ini file."""
        p = hello_imgui.RunnerParams()
        title = APP_NAME if self.cfg.path is None else f"{APP_NAME} - {self.cfg.path.name}"
        p.app_window_params.window_title = title
        p.app_window_params.window_geometry.size = (self.cfg.width, self.cfg.height)
        p.imgui_window_params.default_imgui_window_type = hello_imgui.DefaultImGuiWindowType.no_default_window
        p.callbacks.show_gui = self.gui
        p.callbacks.post_init = self.query_gl
        p.ini_disable = True
        p.fps_idling.enable_idling = self.cfg.frames == 0
        self.params = p
        return p


def _wrapped(rgba: tuple[float, float, float, float], text: str) -> None:
    imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*rgba))
    imgui.text_wrapped(text)
    imgui.pop_style_color()


def display_problem() -> str:
    """Why no window can open here, or '' if one can."""
    if sys.platform == "linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("no display: DISPLAY is not set. Run on a desktop session, or under a virtual X server: "
                'xvfb-run -a -s "-screen 0 1280x800x24" python run_viewer.py ...')
    return ""


def save_screenshot(path: Path) -> tuple[int, int]:
    """Write the last frame of the window that just closed to ``path``; returns (width, height)."""
    from PIL import Image

    img = hello_imgui.final_app_window_screenshot()
    if img is None or img.size == 0:
        raise RuntimeError("no frame was rendered, so there is nothing to save")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return img.shape[1], img.shape[0]


def main(cfg: PlaceholderConfig) -> int:
    """Open the placeholder window; returns a process exit status."""
    problem = display_problem()
    if problem:
        print(f"{APP_NAME}: {problem}", file=sys.stderr)
        return 2
    app = PlaceholderApp(cfg)
    app.start_probe()
    immapp.run(app.runner_params())
    if cfg.screenshot is not None:
        w, h = save_screenshot(cfg.screenshot)
        print(f"{APP_NAME}: saved {w}x{h} screenshot to {cfg.screenshot}")
    return 0
