"""Filling a stage form of the Inversion panel from an ImGui test-engine test (the panel and GGHead tests).

The panel's layout can move a frame after a click (a note line appears or goes); an input that misses its
moved field fails only in the engine's log, and the stage then runs with its default steps and the ID
network, far past any wait. The speed measurement that starts after preprocessing moves it too when it ends
(its note and the presets' time estimates change), at a moment that depends on the machine's load. So: wait
for that measurement, settle the layout, fill the form, and check that every value landed.
"""

from __future__ import annotations

import time

from viewer.features.inversion.speed import SPEED_JOB

MEASUREMENT_WAIT_S = 120.0


def fill_stage_form(ctx, session, panel: str, stage: str, steps: int, every: int = 1) -> None:
    """Stage ``stage`` ("stage1" / "stage2") of the Inversion panel at item path ``panel``: no ID term (no
    facenet: keeps tests quick), ``steps`` steps, batch 1, the view updated every ``every`` steps."""
    deadline = time.monotonic() + MEASUREMENT_WAIT_S
    while (session.studio.jobs.running(SPEED_JOB) or session.speed.note.startswith("measuring")) \
            and time.monotonic() < deadline:
        ctx.yield_(1)
    ctx.yield_(3)
    ctx.item_input_value(f"{panel}/{stage}/ID weight", 0.0)
    ctx.item_input_value(f"{panel}/{stage}/steps", steps)
    ctx.item_input_value(f"{panel}/{stage}/batch size", 1)
    ctx.item_input_value(f"{panel}/{stage}/show every (steps)", every)
    form = getattr(session.state.panel, "latent" if stage == "stage1" else "tuning")
    assert (form.id_weight, form.steps, form.batch_size) == (0.0, steps, 1), form
