"""The Inversion panel's data: the form the user edits (:class:`InversionPanel`) and what the inversion
feature publishes for the panel to read (:class:`InversionInfo`), kept together as ``UiState.inversion``.
Its actions are in :mod:`ui_state.actions`. Plain data (standard library and numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FRAMINGS = ("synthetic-heads", "ffhq-eg3d")  # inversion.framing.FRAMINGS keys
SPACES = ("w", "w+")
STAND_IN_LABEL = "random-weight loss networks (testing only)"
WEIGHTS_DIR_LABEL = "weights folder"
OFFLINE_LABEL = "never download weight files"


@dataclass
class StageForm:
    """Settings of one optimisation stage as the panel edits them. The defaults are placeholders: the inversion
    feature fills the form from a preset of ``inversion.config`` when it starts (and whenever one is chosen).

    Attributes:
        id_weight, mse_weight, lpips_weight, ssim_weight: loss term weights (>= 0; 0 skips the term and its
            network; SSIM weighs ``1 - SSIM``).
        lr: Adam learning rate. steps: planned steps. batch_size: photos per step.
    """

    id_weight: float = 0.0
    mse_weight: float = 1.0
    lpips_weight: float = 0.0
    ssim_weight: float = 0.0
    lr: float = 1e-3
    steps: int = 1
    batch_size: int = 1


@dataclass
class InversionPanel:
    """The panel's form (mutable; widgets write it every frame). Filled from a preset by the inversion feature;
    the defaults here are placeholders.

    Attributes:
        paths: photo paths typed by the user, separated by ``;``.
        webcam_open: the webcam section was drawn open in the last frame (the panel sets it each frame, the
            controller reads and clears it; the camera is open only while it stays set).
        framing: the model's face framing (a key of ``inversion.framing.FRAMINGS``).
        latent: stage 1 settings; space: ``"w"`` or ``"w+"``; refine_cameras: stage 1 refines the cameras.
        follow_every: stage 1 shows its current latent in the view every this many steps.
        tuning: stage 2 settings; locality_weight: PTI's locality regulariser weight (0: off).
        publish_every: stage 2 hands its tuned copy to the view every this many steps (and at the end).
        output: folder for "Save everything". orbit_frames: frames of the orbit video (0: none).
        stand_in_losses: use untrained stand-ins for missing LPIPS/ID weight files (testing only).
        weights_dir: an extra folder searched for the pretrained loss weights ("" = the torch caches only).
        offline: never download a missing weight file (without it one is downloaded on first use).
        preset: the preset whose values the form holds ("" once the user changed one of them).
        based_on: the preset the form was last filled from; the settings the form does not show are its.
    """

    paths: str = ""
    webcam_open: bool = False
    framing: str = "synthetic-heads"
    latent: StageForm = field(default_factory=StageForm)
    space: str = "w"
    refine_cameras: bool = True
    follow_every: int = 5
    tuning: StageForm = field(default_factory=StageForm)
    locality_weight: float = 0.0
    publish_every: int = 25
    output: str = "out/inversion"
    orbit_frames: int = 48
    stand_in_losses: bool = False
    weights_dir: str = ""
    offline: bool = False
    preset: str = ""
    based_on: str = ""


@dataclass(frozen=True, slots=True)
class PresetInfo:
    """A preset as the panel lists it: step counts of stage 1 and stage 2, the estimated time on this device
    (``seconds`` None until the speed was measured) and its one-line summary."""

    name: str
    latent_steps: int
    tuning_steps: int
    seconds: float | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class PhotoThumb:
    """One preprocessed photo as the panel shows it.

    Attributes:
        name: the photo's label.
        texture: GL texture id of the aligned crop with its landmarks drawn (0 = none).
        size: ``(w, h)`` of that texture in pixels. yaw_deg, pitch_deg: the estimated camera (degrees, viewer
        convention: yaw 0 frontal). note: a remark (several faces, ...), or "".
    """

    name: str
    texture: int
    size: tuple[int, int]
    yaw_deg: float
    pitch_deg: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class InversionMessage:
    """A line in the panel: ``level`` is "info", "warning" or "error"."""

    text: str
    level: str = "info"


@dataclass(frozen=True, eq=False)
class InversionInfo:
    """What the controller publishes (replaced whole; the panel only reads it).

    Attributes:
        photos: labels of the chosen inputs (files and webcam pictures), in order.
        thumbs: the preprocessed photos (empty until "Preprocess" finished).
        webcam_texture, webcam_size: live preview (0 = none); webcam_status: "" or a line about the camera.
        stage: what runs now: "", "preprocess", "latent", "tuning" or "saving".
        step, total_steps: progress of the running (or last) optimisation stage.
        latent_history, tuning_history: term name (``total``, ``mse``, ``lpips``, ``id``, ``locality``) ->
            ``float64 [steps]`` loss per step of stage 1 / stage 2 (empty dict before the stage ran).
        has_target: preprocessing produced usable photos. has_latent: stage 1 has a result.
        has_tuned: stage 2 has a tuned generator. tuned_active: the view shows it (source ``memory:tuned``).
        loss_sources: loss network -> where its weights came from (a file or "random stand-in").
        messages: newest last (errors included, with level "error").
        saved_to: the folder of the last "Save everything" ("" = none yet).
        stage_notes: stage ("preprocess", "latent", "tuning", "saving") -> its newest error or warning, shown
            under that stage's buttons (where the user looks).
        presets: the presets with their estimated times on this device. speed: a line about the measured speed
            ("" before any). seconds_per_step: measured (stage 1, stage 2) seconds per step (None: unknown).
        weights_note: what the chosen loss terms need that is missing, in the panel's words: level "error" when
            they cannot run (offline), "info" when their weight files will be downloaded on first use; None: all there.
        latent_weights, tuning_weights: term -> weight the last run of each stage used (the plot draws
            ``weight * term``, only terms with a weight above 0, so the parts add up to the total).
        eta_s: estimated seconds left of the running stage (None: unknown).
    """

    photos: tuple[str, ...] = ()
    thumbs: tuple[PhotoThumb, ...] = ()
    webcam_texture: int = 0
    webcam_size: tuple[int, int] = (0, 0)
    webcam_status: str = ""
    stage: str = ""
    step: int = 0
    total_steps: int = 0
    latent_history: dict[str, np.ndarray] = field(default_factory=dict)
    tuning_history: dict[str, np.ndarray] = field(default_factory=dict)
    has_target: bool = False
    has_latent: bool = False
    has_tuned: bool = False
    tuned_active: bool = False
    loss_sources: dict[str, str] = field(default_factory=dict)
    messages: tuple[InversionMessage, ...] = ()
    saved_to: str = ""
    stage_notes: dict[str, InversionMessage] = field(default_factory=dict)
    presets: tuple[PresetInfo, ...] = ()
    speed: str = ""
    seconds_per_step: tuple[float | None, float | None] = (None, None)
    weights_note: InversionMessage | None = None
    latent_weights: dict[str, float] = field(default_factory=dict)
    tuning_weights: dict[str, float] = field(default_factory=dict)
    eta_s: float | None = None

    @property
    def running(self) -> bool:
        return bool(self.stage)


@dataclass
class InversionUi:
    """The panel's form and the controller's published info, kept together on the UI state."""

    panel: InversionPanel = field(default_factory=InversionPanel)
    info: InversionInfo = field(default_factory=InversionInfo)


def split_paths(text: str) -> list[str]:
    """``"a.jpg; b.png ;"`` -> ``["a.jpg", "b.png"]`` (``;``-separated, whitespace and quotes stripped)."""
    parts = (p.strip().strip("\"'").strip() for p in text.split(";"))
    return [p for p in parts if p]
