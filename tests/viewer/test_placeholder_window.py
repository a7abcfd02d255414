"""The placeholder window opens for real (glfw + OpenGL + imgui-bundle), driven by the ImGui test engine.

Needs a display: `make test` runs pytest under xvfb-run when there is none (see tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewer.placeholder import (
    APP_NAME,
    BANNER_RGB,
    PlaceholderApp,
    PlaceholderConfig,
    format_header,
    summarize_ply,
)

ROOT = Path(__file__).resolve().parents[2]


def write_tiny_3dgs_ply(path: Path, n: int = 7) -> Path:
    """A degree-0 3DGS vertex table (written with plyfile, independent of core.ply's writer)."""
    from plyfile import PlyData, PlyElement

    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
    table = np.zeros(n, dtype=[(name, "f4") for name in names])
    table["rot_0"] = 1.0
    PlyData([PlyElement.describe(table, "vertex")]).write(str(path))
    return path


def assert_real_screenshot(png: Path, size: tuple[int, int]) -> np.ndarray:
    """The PNG is the whole window at ``size`` (or a uniform HiDPI multiple) and shows the amber banner."""
    img = np.asarray(Image.open(png).convert("RGB"))
    h, w = img.shape[:2]
    scale = w / size[0]
    assert scale >= 1 and h == round(size[1] * scale), f"screenshot {w}x{h}, window {size[0]}x{size[1]}"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20, "screenshot is (nearly) one colour"
    banner = np.all(img == BANNER_RGB, axis=-1)
    rows, cols = np.nonzero(banner)
    assert banner.sum() > 0.5 * w * 20 * scale, f"banner colour covers only {banner.sum()} px"
    assert cols.max() - cols.min() > 0.9 * w, "banner does not span the window"
    assert rows.min() < 0.2 * h, "banner is not at the top"
    return img


@pytest.mark.gui
def test_window_under_test_engine(tmp_path):
    from imgui_bundle import imgui
    from imgui_bundle.immapp import testing

    ply = write_tiny_3dgs_ply(tmp_path / "tiny.ply")
    png = tmp_path / "engine.png"
    size = (960, 600)
    app = PlaceholderApp(PlaceholderConfig(path=ply, width=size[0], height=size[1]))
    app.start_probe()
    seen = {}

    def wait_until(ctx, condition, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            ctx.yield_()

    def test(ctx: imgui.test_engine.TestContext) -> None:
        wait_until(ctx, lambda: app.ready, "the start-up probe")
        ctx.set_ref(APP_NAME)
        assert ctx.item_exists("Reload"), "no Reload button in the window"
        ctx.item_click("Reload")
        seen["generation_after_click"] = app.generation
        wait_until(ctx, lambda: app.ready, "the probe started by Reload")
        testing.capture(ctx, str(png))

    testing.run(test_function=test, runner_params=app.runner_params())

    assert seen["generation_after_click"] == 2, "clicking Reload did not start a new probe"
    probe = app.probe
    assert probe is not None and probe.generation == 2
    assert probe.error == "", probe.error
    assert probe.torch_version and probe.device
    assert "llvmpipe" in app.gl_info or "OpenGL" in app.gl_info, app.gl_info
    assert probe.ply_error == "" and probe.ply_lines, f"PLY header not shown: {probe.ply_error}"
    assert_real_screenshot(png, size)


@pytest.mark.gui
@pytest.mark.slow
def test_run_viewer_cli_smoke(tmp_path):
    """run_viewer.py end to end in a fresh process: missing file shown as text, screenshot saved, exit 0."""
    png = tmp_path / "cli.png"
    cmd = [sys.executable, "run_viewer.py", str(tmp_path / "missing.ply"), "--frames", "3", "--screenshot",
           str(png), "--width", "800", "--height", "480"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "saved 800x480 screenshot" in r.stdout
    assert_real_screenshot(png, (800, 480))


def test_cli_without_display_fails_clearly():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if sys.platform != "linux":
        pytest.skip("the no-display check is Linux-only")
    r = subprocess.run([sys.executable, "run_viewer.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert "no display" in r.stderr and "xvfb-run" in r.stderr


def test_summarize_ply_never_raises(tmp_path):
    lines, error = summarize_ply(tmp_path / "nope.ply")
    assert lines == () and "file not found" in error
    bad = tmp_path / "bad.ply"
    bad.write_text("not a ply\n")
    lines, error = summarize_ply(bad)
    assert lines == () and error


def test_format_header_handles_any_shape():
    from dataclasses import dataclass, field

    @dataclass
    class H:
        count: int
        names: tuple[str, ...]
        hidden: int = field(default=0, repr=False)

    lines = format_header(H(3, tuple(f"p{i}" for i in range(20))))
    assert lines[0] == "count: 3"
    assert lines[1] == "names: 20 items: p0, p1, p2, p3, ..., p19"
    assert len(lines) == 2
    assert format_header({"a": 1}) == ("a: 1",)
    assert format_header("x\ny") == ("x", "y")
    assert format_header(5) == ("5",)
