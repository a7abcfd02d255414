"""Render the README's screenshots of the studio window (run under Xvfb; uses the ImGui test engine to set the
window up the way a user would, then captures it).

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/readme_screenshots.py viewer docs/images/viewer.png
    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/readme_screenshots.py inversion \\
        docs/images/viewer_inversion.png
    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/readme_screenshots.py training \\
        docs/images/training_panel.png --run-dir RUN_DIR

``viewer``: the default model, seed 3 smiling, the Latent panel scrolled to its measured sliders (their targets
start at the head's own values). ``inversion``: scikit-image's astronaut portrait preprocessed, the presets with the time they take
on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgui_bundle import hello_imgui, imgui  # noqa: E402
from imgui_bundle.immapp import testing  # noqa: E402

from viewer.app import ViewerApp  # noqa: E402
from viewer.config import ViewerConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("viewer", "inversion", "training"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--run-dir", default="")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    app = ViewerApp(ViewerConfig(path=args.model, resolution=512, width=1400, height=900,
                                 state_dir=Path("/tmp/readme-shots")), device="cpu")

    def wait(ctx, cond, timeout=600.0):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            ctx.yield_()

    def test(ctx: imgui.test_engine.TestContext) -> None:
        io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())
        io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 600, 1200, 1500
        settled = lambda: app.display.settled  # noqa: E731
        wait(ctx, settled)
        if args.what == "viewer":
            for header in ("Load", "Camera"):
                ctx.item_close(f"Panels/{header}")
            ctx.item_input_value("Panels/Latent/seed", 3)
            wait(ctx, lambda: settled() and app.ui.latent.latent.seed == 3)
            wait(ctx, lambda: len(app.ui.info.directions.sliders) > 0, 60)
            ctx.item_input_value("Panels/Latent/PCA sliders shown", 2)
            ctx.item_input_value("Panels/Latent/slider_smile/smile", 1.5)
            app.ui.camera.camera = type(app.ui.camera.camera)(yaw_deg=30.0, pitch_deg=5.0)
            wait(ctx, lambda: all(m.value is not None for m in app.ui.info.directions.measured), 60)
            ctx.scroll_to_bottom("//Panels")
        elif args.what == "inversion":
            from PIL import Image
            from skimage.data import astronaut

            photo = Path("/tmp/readme-shots/astronaut.jpg")
            photo.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(astronaut()).save(photo)
            for header in ("Load", "Camera", "Latent"):
                ctx.item_close(f"Panels/{header}")
            ctx.item_open("Panels/Inversion")
            ctx.item_input_value("Panels/Inversion/photos", str(photo))  # Enter adds it
            ctx.item_click("Panels/Inversion/Preprocess")
            info = lambda: app.ui.inversion.info  # noqa: E731
            wait(ctx, lambda: info().has_target and not info().running, 300)
            wait(ctx, lambda: "s/step" in info().speed, 300)
            ctx.scroll_to_item_y("Panels/Inversion/quick##preset")
        else:
            for header in ("Load", "Camera", "Latent"):
                ctx.item_close(f"Panels/{header}")
            ctx.item_open("Panels/Training")
            ctx.item_input_value("Panels/Training/run dir##attach", args.run_dir)
            ctx.item_click("Panels/Training/Attach")
            wait(ctx, lambda: app.ui.info.training.grid_texture != 0, 60)
        ctx.mouse_move_to_pos(imgui.ImVec2(1380, 880))  # the pointer rests in a corner, not over the head
        for _ in range(20):
            ctx.yield_()
        wait(ctx, settled)
        for _ in range(10):
            ctx.yield_()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        testing.capture(ctx, str(args.out))

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
