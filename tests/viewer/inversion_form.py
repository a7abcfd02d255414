"""Filling a stage form of the Inversion panel from an ImGui test-engine test (the panel and GGHead tests).

The panel's layout can move a frame after a click (a note line appears or goes); an input that misses its
moved field fails only in the engine's log, and the stage then runs with its default steps and the ID
network, far past any wait. So: settle the layout first, fill the form, and check that every value landed.
"""

from __future__ import annotations


def fill_stage_form(ctx, session, panel: str, stage: str, steps: int, every: int = 1) -> None:
    """Stage ``stage`` ("stage1" / "stage2") of the Inversion panel at item path ``panel``: no ID term (no
    facenet: keeps tests quick), ``steps`` steps, batch 1, the view updated every ``every`` steps."""
    ctx.yield_(3)
    ctx.item_input_value(f"{panel}/{stage}/ID weight", 0.0)
    ctx.item_input_value(f"{panel}/{stage}/steps", steps)
    ctx.item_input_value(f"{panel}/{stage}/batch size", 1)
    ctx.item_input_value(f"{panel}/{stage}/show every (steps)", every)
    form = getattr(session.state.panel, "latent" if stage == "stage1" else "tuning")
    assert (form.id_weight, form.steps, form.batch_size) == (0.0, steps, 1), form
