"""A GGHead model in the real studio window (glfw + OpenGL + imgui-bundle under Xvfb, driven by the ImGui test
engine): every panel used on GGHead-format checkpoints (tiny stand-ins written in the exact upstream pickle
format by ``core.gghead.format_writer``, opened through the Load panel as a user's file).

- ``test_gghead_latent_panels``: Load by path and from the recent list, seeds, psi and cutoff (checked on the
  ws the worker used), the W/Z space of the drag plot, PCA sliders computed in the window, attribute sliders from
  a directions file made by ``python -m training.directions`` on the GGHead file.
- ``test_gghead_edit_save_video_inspect``: Edit with undo/redo (and every other op), .ply (the shown Gaussians in the standard 3DGS
  layout with SH degree 1, read back with plyfile), .png, a saved latent restored and a latents file loaded,
  Video, Inspect and Performance.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from window_wait import waiter  # tests/viewer/window_wait.py

pytestmark = [pytest.mark.gui, pytest.mark.slow]
RES = 128
N_TINY = 428  # Gaussians of the tiny preset's synthetic UV template (24 x 24 grid)


_wait = waiter(120.0)


def _image(ctx, app) -> np.ndarray:
    """What the viewport shows now (uint8 [H, W, 3]), read back on the GUI thread."""
    app.request_capture()
    _wait(ctx, lambda: app.captured_view is not None, "the captured view", 30.0)
    return app.captured_view


def _settled(app) -> bool:
    return app.display.settled


def _shows(app, source: str) -> bool:
    r = app.display.result
    return _settled(app) and r is not None and r.params is not None and r.params.source == source


def _watchdog(ctx) -> None:
    from imgui_bundle import hello_imgui, imgui

    io = imgui.test_engine.get_io(hello_imgui.get_imgui_test_engine())  # slow machines: no 60 s watchdog
    io.config_watchdog_warning, io.config_watchdog_kill_test, io.config_watchdog_kill_app = 120, 900, 1200


def _escape(path: str) -> str:
    """An ImGui test-engine reference to a label holding a path ('/' separates reference levels)."""
    return path.replace("/", "\\/")


@pytest.fixture(scope="module")
def gghead_files(tmp_path_factory):
    """Two GGHead-format checkpoints (different weights); the second gets a directions file made by
    ``python -m training.directions`` with attribute sliders from a classifier trained on a tiny labelled
    synthetic dataset."""
    from core.gghead.config import PRESETS
    from core.gghead.format_writer import write_gghead_checkpoint
    from training.directions.__main__ import main as directions_main
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset

    d = tmp_path_factory.mktemp("gghead_models")
    plain = d / "ffhq512" / "checkpoints" / "checkpoint-000100.pkl"
    edited = d / "afhq" / "checkpoints" / "checkpoint-000200.pkl"
    for path, seed in ((plain, 0), (edited, 1)):
        path.parent.mkdir(parents=True)
        write_gghead_checkpoint(path, PRESETS["tiny"], seed=seed)
    data = d / "heads"
    write_dataset(DatasetConfig(out=data, num_identities=10, views_per_identity=2, resolution=32, workers=1),
                  progress=False)
    rc = directions_main(["--model", str(edited), "--data", str(data), "--epochs", "1",
                          "--classifier-resolution", "32", "--pca-samples", "300", "--pca-components", "3",
                          "--attribute-samples", "40", "--measured-samples", "16", "--device", "cpu"])
    assert rc == 0
    return plain, edited


def _app(tmp_path, **kw):
    from viewer.app import ViewerApp
    from viewer.config import ViewerConfig

    cfg = ViewerConfig(path="random:tiny", resolution=RES, width=1100, height=900, state_dir=tmp_path / "state",
                       **kw)
    return ViewerApp(cfg, device="cpu")


def _pick(ctx, combo: str, items: tuple[str, ...], item: str) -> None:
    """Open a combo box and click one of its items (ImGui's combo pushes each item's index as its ID)."""
    ctx.item_click(combo)
    ctx.yield_()
    ctx.item_click(f"//##Combo_00/$${items.index(item)}/{item}")


def _open_by_path(ctx, app, path: Path) -> None:
    ctx.item_input("Panels/Load/path##load")  # type without Enter: Enter alone opens the file, so Enter + Open
    ctx.key_chars_replace(str(path))  # opened it twice and the second load raced the clicks that followed
    ctx.item_click("Panels/Load/Open##load")
    _wait(ctx, lambda: _shows(app, str(path)), f"{path.name} in the view")
    assert app.ui.info.error is None, app.ui.info.error


def test_gghead_latent_panels(tmp_path, gghead_files):
    from imgui_bundle import imgui
    from imgui_bundle.immapp import testing

    from core.editing import find_directions
    from widgets.latent import SPACES

    plain, edited = gghead_files
    app = _app(tmp_path)
    seen: dict = {}

    def worker_generator(fn):
        return app.worker.call(lambda gpu: fn(gpu.generator(str(plain), "cpu")), 60)

    def test(ctx: imgui.test_engine.TestContext) -> None:
        _watchdog(ctx)
        ui = app.ui
        ctx.item_close("Panels/Camera")
        _wait(ctx, lambda: _shows(app, "random:tiny"), "the start-up model")

        # Load by path: the GGHead checkpoint replaces the built-in model.
        _open_by_path(ctx, app, plain)
        r = app.display.result
        assert ui.load.current == str(plain) and r.stats.gaussians == N_TINY and r.stats.source_kind == "generator"
        assert ui.info.display_path == "image" and r.stats.backend == "cpu-splats"
        assert not ui.info.random_weights
        assert worker_generator(lambda G: G.family) == "gghead"
        first = _image(ctx, app)
        covered = np.any(np.abs(first.astype(int) - 255) > 8, axis=-1).mean()
        seen["coverage"] = covered
        assert 0.05 < covered < 0.99, f"head coverage {covered:.3f}"

        # Seeds: another seed is another head; psi and cutoff act on the ws the worker used.
        ctx.item_input_value("Panels/Latent/seed", 7)
        _wait(ctx, lambda: ui.latent.latent.seed == 7 and _settled(app), "seed 7")
        seed7 = _image(ctx, app)
        seen["seed_change"] = float(np.abs(seed7.astype(int) - first.astype(int)).mean())
        w_avg = worker_generator(lambda G: G.w_avg.detach().clone()).numpy()
        ctx.item_input_value("Panels/Latent/truncation psi", 0.0)
        _wait(ctx, lambda: ui.latent.latent.psi == 0.0 and _settled(app), "psi 0")
        avg = _image(ctx, app)
        np.testing.assert_allclose(app.display.result.base_ws, np.broadcast_to(w_avg, (6, 32)), atol=1e-6)
        ctx.item_input_value("Panels/Latent/seed", 3)
        _wait(ctx, lambda: ui.latent.latent.seed == 3 and _settled(app), "seed 3 at psi 0")
        assert np.array_equal(_image(ctx, app), avg), "at psi = 0 every seed must give the average head"
        ctx.item_input_value("Panels/Latent/cutoff (0 = all)", 2)
        _wait(ctx, lambda: ui.latent.latent.cutoff == 2 and _settled(app), "cutoff 2")
        ws = app.display.result.base_ws
        np.testing.assert_allclose(ws[:2], np.broadcast_to(w_avg, (2, 32)), atol=1e-6)
        assert np.abs(ws[2:] - w_avg).max() > 0.05 and np.allclose(ws[2:], ws[2]), "slots >= cutoff: seed 3's w"
        assert not np.array_equal(_image(ctx, app), avg)
        ctx.item_input_value("Panels/Latent/cutoff (0 = all)", 0)
        ctx.item_input_value("Panels/Latent/truncation psi", 0.7)
        _wait(ctx, lambda: ui.latent.latent.cutoff is None and ui.latent.latent.psi == pytest.approx(0.7)
              and _settled(app), "psi 0.7, no cutoff")

        # W/Z: the drag plot blends four seeds' latents in z (before mapping) or in w (after).
        ctx.item_check("Panels/Latent/drag plot")
        _wait(ctx, lambda: app.display.result.params.latent.grid_xy is not None and _settled(app), "the drag plot")
        in_z = _image(ctx, app)
        _pick(ctx, "Panels/Latent/space", SPACES, "w")
        _wait(ctx, lambda: app.display.result.params.latent.space == "w" and _settled(app), "space w")
        seen["w_vs_z"] = float(np.abs(_image(ctx, app).astype(int) - in_z.astype(int)).mean())
        _pick(ctx, "Panels/Latent/space", SPACES, "z")
        ctx.item_uncheck("Panels/Latent/drag plot")
        _wait(ctx, lambda: app.display.result.params.latent.grid_xy is None
              and app.display.result.params.latent.space == "z" and _settled(app), "the plain seed again")
        base = _image(ctx, app)

        # PCA sliders computed in the window (saved beside the model), moved, and back to 0.
        ctx.item_click("Panels/Latent/Compute PCA sliders")
        _wait(ctx, lambda: len(ui.info.directions.sliders) > 0, "PCA sliders", 240.0)
        assert find_directions(plain) is not None, "the PCA sliders were not saved beside the GGHead file"
        ctx.item_input_value("Panels/Latent/slider_PCA0/PCA0", 2.5)
        _wait(ctx, lambda: _settled(app) and app.display.result.params.sliders.values == (("PCA0", 2.5),),
              "the slider's effect")
        seen["pca_moved"] = float(np.abs(_image(ctx, app).astype(int) - base.astype(int)).mean())
        assert not np.array_equal(app.display.result.ws, app.display.result.base_ws)
        ctx.item_click("Panels/Latent/slider_PCA0/0")
        _wait(ctx, lambda: _settled(app) and not app.display.result.params.sliders.values, "PCA0 back at 0")
        assert np.array_equal(_image(ctx, app), base), "slider back to 0 must restore the head exactly"

        # Attribute sliders: the second checkpoint has a directions file from training.directions.
        _open_by_path(ctx, app, edited)
        _wait(ctx, lambda: any(d.kind == "attribute" for d in ui.info.directions.sliders), "attribute sliders")
        attr = next(d.name for d in ui.info.directions.sliders if d.kind == "attribute")
        seen["attribute"] = attr
        before = _image(ctx, app)
        ctx.item_input_value(f"Panels/Latent/slider_{attr}/{attr}", 2.0)
        _wait(ctx, lambda: _settled(app) and app.display.result.params.sliders.values == ((attr, 2.0),),
              f"the {attr} slider")
        seen["attr_moved"] = float(np.abs(_image(ctx, app).astype(int) - before.astype(int)).mean())
        ctx.item_click(f"Panels/Latent/slider_{attr}/0")

        # Recent: back to the first GGHead file from the Load panel's list.
        assert ui.load.recent[:2] == [str(edited), str(plain)], ui.load.recent
        ctx.item_click(f"Panels/Load/{_escape(str(plain))}##recent1")
        _wait(ctx, lambda: _shows(app, str(plain)) and ui.latent.latent.seed == 3, "the first model, from recent")
        assert app.display.result.stats.gaussians == N_TINY and ui.info.error is None
        _wait(ctx, lambda: any(d.kind == "pca" for d in ui.info.directions.sliders)
              and not any(d.kind == "attribute" for d in ui.info.directions.sliders), "its own (PCA) sliders")
        seen["done"] = True

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert seen.get("done"), "the test function did not run to the end"
    assert seen["seed_change"] > 0.5, f"seed change barely changed the image ({seen['seed_change']:.2f})"
    assert seen["w_vs_z"] > 1.0, "blending in w and in z gave the same head"
    assert seen["pca_moved"] > 0.5, "moving PCA0 did not change the head"
    assert seen["attr_moved"] > 1.0, f"moving {seen['attribute']} did not change the head"


def test_gghead_edit_save_video_inspect(tmp_path, gghead_files):
    from imgui_bundle import imgui
    from imgui_bundle.immapp import testing
    from plyfile import PlyData

    from core.editing import load_library

    plain, _ = gghead_files
    saved = tmp_path / "saved"
    app = _app(tmp_path)
    app.ui.save.folder = str(saved)
    app.ui.video.request = dataclasses.replace(app.ui.video.request, path=str(tmp_path / "orbit.mp4"))
    seen: dict = {}

    def test(ctx: imgui.test_engine.TestContext) -> None:
        _watchdog(ctx)
        ui = app.ui
        ctx.item_close("Panels/Camera")
        _wait(ctx, lambda: _shows(app, "random:tiny"), "the start-up model")
        _open_by_path(ctx, app, plain)
        ctx.item_input_value("Panels/Latent/seed", 5)
        _wait(ctx, lambda: ui.latent.latent.seed == 5 and _settled(app), "seed 5")
        n0 = app.display.result.stats.gaussians
        assert n0 == N_TINY

        # Edit: an opacity threshold removes Gaussians; undo brings them back, redo removes them again.
        ctx.item_open("Panels/Edit")
        ctx.item_click("Panels/Edit/opacity_threshold##op")
        ctx.item_input_value("Panels/Edit/min_opacity", 0.5)
        ctx.item_click("Panels/Edit/Apply##edit")
        _wait(ctx, lambda: len(ui.info.edits.applied) == 1 and _settled(app), "the edit")
        n1 = app.display.result.stats.gaussians
        assert 0 < n1 < n0, f"opacity threshold kept {n1} of {n0}"
        scene = app.display.result.scene
        assert bool((torch.sigmoid(scene.opacity_logits) >= 0.5).all())
        ctx.item_click("Panels/Edit/Undo##edit")
        _wait(ctx, lambda: not ui.info.edits.applied and _settled(app), "undo")
        assert app.display.result.stats.gaussians == n0
        ctx.item_click("Panels/Edit/Redo##edit")
        _wait(ctx, lambda: len(ui.info.edits.applied) == 1 and _settled(app), "redo")
        seen["edited"] = app.display.result.scene
        seen["edited_count"] = app.display.result.stats.gaussians

        # Save: .ply of what is shown, the image, the latent.
        ctx.item_open("Panels/Save")
        ctx.item_click("Panels/Save/Save .ply")
        ctx.item_click("Panels/Save/Save image")
        ctx.item_click("Panels/Save/Save latent")
        for job in ("save_ply", "save_image", "save_latent"):
            _wait(ctx, lambda: job in ui.info.jobs and not ui.info.jobs[job].running, job)
            assert ui.info.jobs[job].error is None, ui.info.jobs[job].error
        seen["saved_image"] = _image(ctx, app)

        # Video: a short orbit, one frame per worker turn.
        ctx.item_open("Panels/Video")
        ctx.item_input_value("Panels/Video/frames", 4)
        ctx.item_input_value("Panels/Video/resolution (px)", 32)
        ctx.item_click("Panels/Video/Render video")
        _wait(ctx, lambda: "video" in ui.info.jobs and not ui.info.jobs["video"].running, "the video")
        assert ui.info.jobs["video"].error is None, ui.info.jobs["video"].error

        # Inspect and Performance.
        ctx.item_open("Panels/Inspect")
        ctx.item_click("Panels/Inspect/Refresh##inspect")
        _wait(ctx, lambda: ui.info.inspect is not None and ui.info.inspect.count == seen["edited_count"],
              "statistics of the edited head")
        assert ui.info.inspect.sh_degree == 1 and ui.info.inspect.non_finite == 0
        ctx.item_open("Panels/Performance")
        for _ in range(3):
            ctx.yield_()
        assert len(ui.info.gui_ms) > 10 and len(ui.info.render_ms) > 0
        # Every other edit op applies to the GGHead scene (default parameters) on top; Clear removes them all.
        for op in [o.name for o in ui.info.edit_ops if o.name != "opacity_threshold"]:
            count = len(ui.info.edits.applied)
            ctx.item_click(f"Panels/Edit/{op}##op")
            ctx.item_click("Panels/Edit/Apply##edit")
            _wait(ctx, lambda: len(ui.info.edits.applied) == count + 1 and _settled(app), f"the {op} edit")
            assert app.display.result.error is None and ui.info.error is None, (op, app.display.result.error)
            seen.setdefault("ops", []).append(op)
        ctx.item_click("Panels/Edit/Clear##edit")
        _wait(ctx, lambda: not ui.info.edits.applied and _settled(app), "edits cleared")
        assert app.display.result.stats.gaussians == n0

        # Saved latents: save, change, restore; then the latents file from the Save panel.
        saved_head = _image(ctx, app)
        ctx.item_click("Panels/Latent/Save##latent")
        ctx.yield_()
        assert [e.name for e in ui.info.saved_latents] == ["latent 1"] and ui.info.saved_latents[0].texture
        ctx.item_input_value("Panels/Latent/seed", 11)
        _wait(ctx, lambda: ui.latent.latent.seed == 11 and _settled(app), "seed 11")
        assert not np.array_equal(_image(ctx, app), saved_head)
        ctx.item_click("Panels/Latent/saved0/restore")
        _wait(ctx, lambda: ui.latent.latent.space == "w" and _settled(app), "the restored latent")
        assert np.array_equal(_image(ctx, app), saved_head), "restoring a saved latent must give the same head"
        ctx.item_input_value("Panels/Latent/seed", 12)
        ctx.item_click("Panels/Latent/use seed")
        _wait(ctx, lambda: ui.latent.latent.latent is None and ui.latent.latent.seed == 12 and _settled(app),
              "seed 12")
        (latents_file,) = saved.glob("*.latents.npz")
        ctx.item_input_value("Panels/Save/latents file##load", str(latents_file))
        ctx.item_click("Panels/Save/Load##latent")
        _wait(ctx, lambda: "load_latent" in ui.info.jobs and not ui.info.jobs["load_latent"].running
              and ui.latent.latent.latent is not None and _settled(app), "the latents file")
        assert ui.info.jobs["load_latent"].error is None, ui.info.jobs["load_latent"].error
        seen["loaded_file_head"] = _image(ctx, app)
        seen["saved_head"] = saved_head

    testing.run(test_function=test, runner_params=app.runner_params(), add_ons_params=app.addons())

    assert "loaded_file_head" in seen, "the test function did not run to the end"
    assert len(seen["ops"]) >= 5, seen["ops"]
    assert np.array_equal(seen["loaded_file_head"], seen["saved_head"]), "the latents file gave another head"
    # The .ply holds the shown (edited) Gaussians in the standard 3DGS layout, SH degree 1 (channel-major f_rest).
    (ply_path,) = saved.glob("*.ply")
    ply = PlyData.read(str(ply_path))
    v = ply["vertex"]
    names = [p.name for p in v.properties]
    assert names == (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                     + [f"f_rest_{i}" for i in range(9)] + ["opacity", "scale_0", "scale_1", "scale_2"]
                     + ["rot_0", "rot_1", "rot_2", "rot_3"]), names
    g = seen["edited"]
    assert v.count == seen["edited_count"] == g.num_gaussians
    col = {n: np.asarray(v[n]) for n in names}
    np.testing.assert_array_equal(np.stack([col["x"], col["y"], col["z"]], 1), g.means.numpy())
    sh = g.sh.numpy()  # [N, 4, 3]
    for c in range(3):
        np.testing.assert_array_equal(col[f"f_dc_{c}"], sh[:, 0, c])
        for k in range(1, 4):
            np.testing.assert_array_equal(col[f"f_rest_{3 * c + k - 1}"], sh[:, k, c])
    np.testing.assert_array_equal(col["opacity"], g.opacity_logits.numpy())
    np.testing.assert_array_equal(np.stack([col[f"scale_{i}"] for i in range(3)], 1), g.log_scales.numpy())
    np.testing.assert_array_equal(np.stack([col[f"rot_{i}"] for i in range(4)], 1), g.quats.numpy())
    png = np.asarray(Image.open(next(saved.glob("*.png"))))
    assert png.shape == (RES, RES, 3) and np.array_equal(png, seen["saved_image"])
    (entry,) = load_library(next(saved.glob("*.latents.npz"))).entries
    assert tuple(entry.edit.base.shape) == (6, 32) and entry.thumbnail is not None
    import imageio

    with imageio.get_reader(tmp_path / "orbit.mp4") as video:
        frames = [f for f in video]
    assert len(frames) == 4 and frames[0].shape == (32, 32, 3)
    assert len({f.tobytes() for f in frames}) > 1, "the orbit's frames are all the same"
