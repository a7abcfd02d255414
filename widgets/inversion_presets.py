"""The Inversion panel's presets: quick / standard / thorough (``inversion.config.PRESETS``, listed by the
inversion feature; choosing one fills the whole form), each with the time it takes on this device (measured by
the inversion feature), and the time of the steps typed by hand."""

from __future__ import annotations

from imgui_bundle import imgui

from ui_state.actions import ChoosePreset
from ui_state.ui import UiState
from widgets.layout import disabled_text


def draw(ui: UiState) -> None:
    """quick / standard / thorough: both stages' step counts, with the time they take on this device."""
    p, info = ui.inversion.panel, ui.inversion.info
    imgui.text("preset")
    for preset in info.presets:
        imgui.same_line()
        if imgui.radio_button(f"{preset.name}##preset", p.preset == preset.name):
            ui.request(ChoosePreset(preset.name))
        when = f", about {duration(preset.seconds)}" if preset.seconds is not None else ""
        imgui.set_item_tooltip(f"{preset.summary}\nstage 1: {preset.latent_steps} steps, stage 2: "
                               f"{preset.tuning_steps} steps{when}\nChoosing it sets every field below.")
    chosen = next((x for x in info.presets if x.name == p.preset), None)
    if chosen is not None and chosen.seconds is not None:
        disabled_text(f"{chosen.latent_steps} + {chosen.tuning_steps} steps: about {duration(chosen.seconds)} "
                            "on this device")
    elif chosen is None and all(s is not None for s in info.seconds_per_step):
        s1, s2 = info.seconds_per_step
        disabled_text(f"{p.latent.steps} + {p.tuning.steps} steps: about "
                            f"{duration(p.latent.steps * s1 + p.tuning.steps * s2)} on this device")
    if chosen is None and p.based_on:
        disabled_text(f"custom: your values, everything else as in {p.based_on}")
    disabled_text(info.speed or "(time estimates after preprocessing: a few steps measure this device)")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
