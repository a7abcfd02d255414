"""The Inversion panel's presets and time estimates: how fast the two stages run on this device.

The speed is measured, not guessed: after preprocessing, a short worker job runs a few throw-away steps of
each stage (``stages.speed_job``) with the form's settings and with every preset's own (once per distinct
:func:`settings.speed_key`: fit resolution, photos per step, loss terms, locality cadence; ``quick`` fits a
256 px model at 128 px and runs MSE + SSIM on 2 photos, ``standard`` and ``thorough`` share one
measurement); every finished real run then replaces the figure of its stage for the key it ran with.
Estimate = seconds per step x steps. The presets (quick / standard / thorough) are
``inversion.config.PRESETS``: choosing one fills the whole form (``settings.fill_form``); the default is the
largest that fits ``settings.TIME_BUDGET_S`` on this device.
"""

from __future__ import annotations

from ui_state.actions import ChoosePreset
from ui_state.inversion import PresetInfo
from viewer.features.inversion import stages
from viewer.features.inversion.settings import (
    default_preset, estimate_s, fill_form, form_matches, latent_settings, preset_names, preset_run_settings,
    preset_steps, speed_key, tuning_settings,
)

SPEED_JOB = "inversion_speed"
MIN_STEPS_TO_LEARN = 5  # a real run this long replaces the measured figure of its stage

Speed = tuple  # (seconds per stage-1 step | None, seconds per stage-2 step | None)


class StageSpeed:
    """Owned by the inversion feature (``feature``): its panel, jobs and the preprocessed photos."""

    def __init__(self, feature) -> None:
        self.f = feature
        self.by_key: dict[tuple, Speed] = {}  # measured (stage 1, stage 2) seconds per step per speed_key
        self.running_key: tuple | None = None  # the speed_key of the stage that runs now
        self.note = ""
        self._user_chose = False

    # ------------------------------------------------------------------ presets

    def choose(self, a: ChoosePreset, by_user: bool = True) -> None:
        if a.name not in preset_names():
            self.f.say(f"unknown preset {a.name!r}; choose one of {', '.join(preset_names())}", "error")
            return
        fill_form(self.f.state.panel, a.name)
        self._user_chose = self._user_chose or by_user
        self.f.mark_dirty()

    def presets(self) -> tuple[PresetInfo, ...]:
        from inversion.config import PRESETS

        return tuple(PresetInfo(name, a, b, estimate_s((a, b), self._preset_speed(name)),
                                PRESETS[name].summary) for name, (a, b) in preset_steps().items())

    def _preset_speed(self, name: str) -> Speed:
        pre = self.f.preprocessed
        return (None, None) if pre is None else self.by_key.get(speed_key(preset_run_settings(name, pre[0])),
                                                                  (None, None))

    def _form_settings(self):
        """The settings a run would use now (both stages), or None (nothing preprocessed, a value invalid)."""
        pre = self.f.preprocessed
        if pre is None:
            return None
        try:
            return tuning_settings(self.f.state.panel, latent_settings(self.f.state.panel, pre[0]))
        except ValueError:
            return None

    @property
    def per_step(self) -> Speed:
        """Seconds per step of (stage 1, stage 2) with the form's settings; (None, None) while unknown."""
        settings = self._form_settings()
        return (None, None) if settings is None else self.by_key.get(speed_key(settings), (None, None))

    def sync_preset(self) -> None:
        """The form no longer holds its preset's values (the user changed one): no preset is chosen (the settings
        the form does not show stay those of the preset it was filled from)."""
        p = self.f.state.panel
        if p.preset and not form_matches(p, p.preset):
            p.preset = ""
            self._user_chose = True

    # ------------------------------------------------------------------ measuring

    def measure(self) -> None:
        """Start the throw-away steps (after preprocessing; skipped while anything else runs)."""
        f = self.f
        form = self._form_settings()
        if f.target is None or form is None or f._busy():
            return
        runs = {speed_key(form): form}
        for name in preset_names():
            settings = preset_run_settings(name, f.preprocessed[0])
            runs.setdefault(speed_key(settings), settings)
        keys = list(runs)
        work = stages.speed_job([runs[k] for k in keys], f.target, f._base_source(), f.ui.device, f._stop)
        done = lambda per_step: self._measured(keys, per_step)  # noqa: E731
        if f.studio.jobs.start_on_worker(SPEED_JOB, work, on_done=done):
            self.note = "measuring the speed on this device..."
            f.mark_dirty()

    def _measured(self, keys: list[tuple], per_steps) -> None:
        """The speed job's ``per_steps``: one (stage 1, stage 2) pair for each of the first keys it finished
        (None or fewer: it stopped or failed part way)."""
        if not per_steps:
            self.note = ""
            self.f.mark_dirty()
        else:
            self._set({**self.by_key, **dict(zip(keys, per_steps))}, f"measured on {self.f.ui.device}")

    def started(self, settings) -> None:
        """A real stage starts with ``settings`` (both stages' ``InversionSettings``; None: unknown): its
        speed is filed under their key when it ends, and its time left is estimated from that key."""
        self.running_key = None if settings is None else speed_key(settings)

    def learn(self, stage: int, result) -> None:
        """A finished run of stage ``stage`` (0 or 1) with ``steps_done`` and ``seconds``: its own speed, for
        the key it ran with (:meth:`started`)."""
        key, self.running_key = self.running_key, None
        if result is None or result.steps_done < MIN_STEPS_TO_LEARN or key is None:
            return
        per_step = list(self.by_key.get(key, (None, None)))
        per_step[stage] = result.seconds / result.steps_done
        self._set({**self.by_key, key: tuple(per_step)}, f"from the last runs on {self.f.ui.device}")

    def _set(self, by_key: dict, how: str) -> None:
        self.by_key = by_key
        s1, s2 = self.per_step
        parts = [f"stage {i + 1}: {s:.2f} s/step" for i, s in enumerate((s1, s2)) if s is not None]
        self.note = f"{'; '.join(parts) or 'speed known for the presets'} ({how})"
        self.f.mark_dirty()
        # A value the user typed this frame (before the per-frame sync saw it) is a choice too: never fill
        # over it.
        self.sync_preset()
        if not self._user_chose:
            estimates = {p.name: p.seconds for p in self.presets()}
            if all(v is not None for v in estimates.values()):
                self.choose(ChoosePreset(default_preset(self.f.ui.device, estimates)), by_user=False)

    def poll(self) -> None:
        """A measurement that was cancelled (a real run started) or failed leaves no "measuring..." behind."""
        if self.note.startswith("measuring") and not self.f.studio.jobs.running(SPEED_JOB):
            st = self.f.ui.info.jobs.get(SPEED_JOB)
            if st is not None and not st.running and st.error:
                self.note = ""
                self.f.mark_dirty()

    def eta_s(self, stage: str, step: int, total: int) -> float | None:
        """Seconds left of the running ``stage`` ("latent" or "tuning") after ``step`` of ``total``, at the
        speed of the settings it runs with."""
        speed = self.by_key.get(self.running_key, (None, None)) if self.running_key else self.per_step
        s = speed[0 if stage == "latent" else 1] if stage in ("latent", "tuning") else None
        return None if s is None or total <= 0 else max(0, total - step) * s
