"""Photos -> aligned targets with cameras: detection, FFHQ-style alignment, PnP camera, loss weight map.

No matting model ships with the installed packages, so the loss weight is a soft ellipse over the face
region (1 inside, ``background_weight`` far outside) times the part of the crop that came from the photo;
callers with a real foreground mask (e.g. the synthetic dataset's) pass it to :func:`prepare_aligned`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.camera import Cameras
from inversion.alignment import alignment_transform, apply_transform, ffhq_quad, warp_photo
from inversion.detection import MIN_FACE_PX, Face, FaceNotFoundError, detect_faces, mirror_averaged, pick_face
from inversion.framing import SYNTHETIC_HEADS, FaceFraming
from inversion.photos import Photo, PhotoError, load_photo
from inversion.pose import CameraEstimate, CameraModel, estimate_camera


@dataclass(frozen=True)
class PreprocessConfig:
    """Attributes:
        framing: the model's framing (template landmarks, camera sphere).
        resolution: side of the aligned images in pixels (normally the generator's resolution).
        camera_model: ``"pnp"`` keeps the full PnP pose; ``"orbit"`` snaps it onto the training sphere.
        min_face_px: smaller faces are refused.
        background_weight: loss weight far from the face, in [0, 1] (1: uniform weight).
        mirror_landmarks: average the landmarks with those of the mirrored photo (a second MTCNN pass, as long
            as the first: about 0.05 s for a 256 px photo on the CPU, more for large photos, which are searched
            at up to ``DETECT_MAX_SIDE``; :func:`inversion.detection.mirror_averaged`) before alignment and the camera
            estimate: on held-out synthetic heads it lowers the camera error (docs/inversion.md).
    """

    framing: FaceFraming = SYNTHETIC_HEADS
    resolution: int = 512
    camera_model: CameraModel = "pnp"
    min_face_px: float = MIN_FACE_PX
    background_weight: float = 0.3
    mirror_landmarks: bool = True

    def __post_init__(self) -> None:
        if self.resolution < 16:
            raise ValueError(f"resolution must be at least 16 px, got {self.resolution}")
        if not 0.0 <= self.background_weight <= 1.0:
            raise ValueError(f"background_weight must be in [0, 1], got {self.background_weight}")
        if self.camera_model not in ("pnp", "orbit"):
            raise ValueError(f"camera_model must be 'pnp' or 'orbit', got {self.camera_model!r}")


@dataclass(frozen=True, eq=False)
class AlignedPhoto:
    """One photo ready for inversion.

    Attributes:
        name: the photo's label.
        image: ``uint8 [R, R, 3]`` aligned RGB (white outside the photo).
        weight: ``float32 [R, R]`` per-pixel loss weight in [0, 1].
        landmarks: ``[5, 2]`` landmarks in the aligned image, normalised to [0, 1].
        camera: the camera estimate (see :mod:`inversion.pose`).
        transform: ``[2, 3]`` photo pixels -> aligned pixels (identity-like for already aligned inputs).
        message: something the user should know (several faces found), or None.
    """

    name: str
    image: np.ndarray
    weight: np.ndarray
    landmarks: np.ndarray
    camera: CameraEstimate
    transform: np.ndarray
    message: str | None = None


@dataclass(frozen=True, eq=False)
class PreprocessResult:
    """``aligned``: the usable photos in input order; ``problems``: one message per photo that was skipped;
    ``messages``: notes about the usable ones."""

    aligned: list[AlignedPhoto]
    problems: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def face_weight(landmarks_px: np.ndarray, resolution: int, background: float) -> np.ndarray:
    """``float32 [R, R]``: 1 over the face (an ellipse around the FFHQ quad), ``background`` far outside."""
    centre, x = ffhq_quad(landmarks_px)
    half = float(np.hypot(*x))
    ij = np.arange(resolution) + 0.5
    gx, gy = np.meshgrid(ij, ij, indexing="xy")
    # The quad is axis-aligned after alignment; the head reaches higher (hair) than the quad's bottom (chin).
    d = np.sqrt(((gx - centre[0]) / (0.95 * half)) ** 2 + ((gy - centre[1] + 0.1 * half) / (1.2 * half)) ** 2)
    inside = np.clip((1.25 - d) / 0.5, 0.0, 1.0)
    return (background + (1.0 - background) * inside).astype(np.float32)


def prepare_aligned(photo: Photo, face: Face, cfg: PreprocessConfig, mask: np.ndarray | None = None,
                    message: str | None = None) -> AlignedPhoto:
    """Align ``photo`` on ``face``'s landmarks, estimate its camera and build its weight map.

    ``mask``: optional foreground ``[H, W]`` in [0, 1] (photo pixels), used instead of the face ellipse.
    """
    R = cfg.resolution
    A = alignment_transform(face.landmarks, cfg.framing.template(), R)
    image, inside = warp_photo(photo.pixels, A, R)
    lm_px = apply_transform(A, face.landmarks)
    if mask is None:
        weight = face_weight(lm_px, R, cfg.background_weight)
    else:
        m = np.asarray(mask, dtype=np.float32)
        m = m / 255.0 if m.max() > 1.0 else m
        warped, _ = warp_photo((np.repeat(m[..., None], 3, -1) * 255).astype(np.uint8), A, R)
        fg = warped[..., 0].astype(np.float32) / 255.0  # outside the photo is cut by `inside` below
        weight = cfg.background_weight + (1.0 - cfg.background_weight) * fg
    estimate = estimate_camera(lm_px / R, cfg.framing)
    if cfg.camera_model == "orbit":
        estimate = estimate.orbit(cfg.framing)
    return AlignedPhoto(photo.name, image, (weight * inside).astype(np.float32), lm_px / R, estimate, A, message)


def locate_face(photo: Photo, cfg: PreprocessConfig, min_face_px: int | None = None) -> tuple[Face, str | None]:
    """The face to align in ``photo`` and :func:`pick_face`'s message: the pick among MTCNN's detections (at
    least ``min_face_px``, default ``cfg.min_face_px``), its landmarks mirror-averaged when
    ``cfg.mirror_landmarks``. Raises :class:`FaceNotFoundError` when there is none."""
    pick = pick_face(photo, detect_faces(photo), cfg.min_face_px if min_face_px is None else min_face_px)
    return (mirror_averaged(photo, pick.face) if cfg.mirror_landmarks else pick.face), pick.message


def preprocess_photos(sources: list, cfg: PreprocessConfig) -> PreprocessResult:
    """Load (paths) or take (:class:`Photo`) each source, find its face and prepare it.

    Photos that cannot be used are skipped with a message in ``problems``; nothing raises for a bad photo
    (unreadable, not a regular file, too many pixels, no face, too small, or a detection failure).
    """
    aligned, problems, messages = [], [], []
    for src in sources:
        try:
            photo = src if isinstance(src, Photo) else load_photo(src)
            face, message = locate_face(photo, cfg)
            item = prepare_aligned(photo, face, cfg, message=message)
        except (PhotoError, FaceNotFoundError) as exc:
            problems.append(str(exc))
            continue
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:  # detection / alignment failed on it
            name = src.name if isinstance(src, Photo) else str(src)
            problems.append(f"{name}: could not be processed ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        aligned.append(item)
        if item.message:
            messages.append(item.message)
    return PreprocessResult(aligned, problems, messages)


@dataclass(frozen=True, eq=False)
class InversionTarget:
    """What the optimisation fits: N photos of one person.

    Attributes:
        images: ``[N, 3, R, R]`` float32 RGB in [0, 1].
        weights: ``[N, 1, R, R]`` float32 per-pixel loss weights in [0, 1].
        cameras: :class:`Cameras` with batch shape ``[N]`` (the initial estimates).
        names: N labels.
    """

    images: torch.Tensor
    weights: torch.Tensor
    cameras: Cameras
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dim() != 4 or self.images.shape[1] != 3 or n == 0:
            raise ValueError(f"images must be [N>0, 3, R, R], got {list(self.images.shape)}")
        if self.weights.shape != (n, 1) + tuple(self.images.shape[2:]):
            raise ValueError(f"weights must be [N, 1, R, R], got {list(self.weights.shape)}")
        if tuple(self.cameras.batch_shape) != (n,) or len(self.names) != n:
            raise ValueError("cameras and names need one entry per image")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def with_cameras(self, cameras: Cameras) -> InversionTarget:
        """The same photos with other cameras (e.g. stage 1's refined ``InversionStep.cameras`` for stage 2)."""
        return InversionTarget(self.images, self.weights, cameras, self.names)

    def to(self, device: torch.device | str) -> InversionTarget:
        return InversionTarget(self.images.to(device), self.weights.to(device), self.cameras.to(device),
                               self.names)

    def at_most(self, max_resolution: int) -> InversionTarget:
        """The same photos at :func:`fit_size` (downsampled by :func:`downsampled`), or ``self`` when that is
        their size. The cameras stay: their intrinsics are normalised by image size."""
        if fit_size(self.resolution, max_resolution) == self.resolution:
            return self
        return InversionTarget(downsampled(self.images, max_resolution),
                               downsampled(self.weights, max_resolution), self.cameras, self.names)


def check_max_resolution(max_resolution: int) -> None:
    """``ValueError`` unless ``max_resolution`` (a stage's fit cap, px) is 0 (none) or at least 16."""
    if max_resolution < 0 or 0 < max_resolution < 16:
        raise ValueError(f"max_resolution must be 0 or >= 16 px, got {max_resolution}")


def fit_size(resolution: int, max_resolution: int) -> int:
    """The px a stage fits photos of ``resolution`` px at: ``max_resolution`` when it is set (> 0) and
    smaller, else the photos' own."""
    return min(resolution, max_resolution) if max_resolution > 0 else resolution


def downsampled(x: torch.Tensor, max_resolution: int) -> torch.Tensor:
    """``[..., C, R, R]`` in [0, 1] -> ``[..., C, r, r]`` with ``r = fit_size(R, max_resolution)``
    (antialiased bilinear); ``x`` itself when ``r`` is R."""
    r = fit_size(x.shape[-1], max_resolution)
    if r == x.shape[-1]:
        return x
    flat = x.reshape(-1, *x.shape[-3:])
    out = torch.nn.functional.interpolate(flat, size=(r, r), mode="bilinear", antialias=True,
                                          align_corners=False).clamp(0.0, 1.0)
    return out.reshape(*x.shape[:-2], r, r)


def make_target(aligned: list[AlignedPhoto]) -> InversionTarget:
    """Stack aligned photos into one :class:`InversionTarget`."""
    if not aligned:
        raise ValueError("no usable photo: nothing to invert")
    images = torch.stack([torch.from_numpy(a.image).permute(2, 0, 1).float() / 255.0 for a in aligned])
    weights = torch.stack([torch.from_numpy(a.weight)[None] for a in aligned])
    cams = Cameras(torch.stack([a.camera.camera.cam2world for a in aligned]),
                   torch.stack([a.camera.camera.intrinsics for a in aligned]))
    return InversionTarget(images, weights, cams, tuple(a.name for a in aligned))
