"""Face detection with five landmarks: facenet-pytorch's MTCNN, whose weights ship inside its wheel.

facenet-pytorch is installed with ``--no-deps`` and imports torchvision, so :mod:`core.torchvision_compat` is
set up before it. Under numpy 2 MTCNN returns object arrays; they are cast to float32 here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from inversion.photos import Photo

MIN_FACE_PX = 40.0  # faces whose box is narrower than this are refused as too small to invert
MIN_PROBABILITY = 0.9
MTCNN_MIN_FACE = 20  # px, MTCNN's min_face_size
DETECT_MIN_SIDE = MTCNN_MIN_FACE  # px; MTCNN finds nothing (and fails) in smaller images
DETECT_MAX_SIDE = 1280  # px; larger photos are searched at this size (MTCNN then finds faces of >= 64 px in a
# 4096 px photo; 2048 would cost 250 MB and 2.6 s on a 12 MP photo, 1280 costs 110 MB and 1 s)


class FaceNotFoundError(ValueError):
    """No usable face in a photo; ``str(err)`` is a complete message for the user."""


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in the photo's pixel coordinates (x right, y down, origin at the top-left corner).

    Attributes:
        box: ``[4]`` float64 ``(x0, y0, x1, y1)``.
        landmarks: ``[5, 2]`` float64: image-left eye, image-right eye, nose, image-left and image-right mouth
            corner.
        probability: MTCNN's face score in [0, 1].
    """

    box: np.ndarray
    landmarks: np.ndarray
    probability: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


@dataclass(frozen=True, eq=False)
class FacePick:
    """The face used for a photo and what the user should be told about the choice (``message`` or None)."""

    face: Face
    faces_found: int
    message: str | None


_lock = threading.Lock()
_detector: Any = None


def mtcnn() -> Any:
    """The shared MTCNN detector (CPU, keep_all, built once; its weights come from the facenet-pytorch wheel)."""
    global _detector
    with _lock:
        if _detector is None:
            from core.torchvision_compat import ensure_torchvision

            ensure_torchvision()
            from facenet_pytorch import MTCNN

            _detector = MTCNN(keep_all=True, device="cpu", min_face_size=MTCNN_MIN_FACE)
        return _detector


def detect_faces(photo: Photo) -> list[Face]:
    """Every face MTCNN finds in ``photo`` with probability >= :data:`MIN_PROBABILITY`, largest first.

    Photos longer than :data:`DETECT_MAX_SIDE` are searched downscaled (boxes and landmarks are given in the
    photo's own pixels); photos shorter than :data:`DETECT_MIN_SIDE` hold no face MTCNN can find (its image
    pyramid would be empty) and give none.
    """
    h, w = photo.pixels.shape[:2]
    if min(h, w) < DETECT_MIN_SIDE:
        return []
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    pixels = photo.pixels
    if scale < 1.0:
        size = (max(DETECT_MIN_SIDE, round(w * scale)), max(DETECT_MIN_SIDE, round(h * scale)))
        pixels = np.asarray(Image.fromarray(photo.pixels).resize(size, Image.Resampling.BOX))
    boxes, probs, points = mtcnn().detect(pixels, landmarks=True)
    if boxes is None:
        return []
    sx, sy = w / pixels.shape[1], h / pixels.shape[0]
    faces = [Face(np.asarray(b, dtype=np.float64) * [sx, sy, sx, sy],
                  np.asarray(p, dtype=np.float64).reshape(5, 2) * [sx, sy], float(s))
             for b, s, p in zip(np.asarray(boxes).astype(np.float64), np.asarray(probs).astype(np.float64),
                                np.asarray(points).astype(np.float64))]
    faces = [f for f in faces if f.probability >= MIN_PROBABILITY]
    return sorted(faces, key=lambda f: -f.area)


def pick_face(photo: Photo, faces: list[Face], min_face_px: float = MIN_FACE_PX) -> FacePick:
    """Choose the largest face; raise :class:`FaceNotFoundError` when there is none or it is too small."""
    h, w = photo.pixels.shape[:2]
    if not faces:
        raise FaceNotFoundError(f"{photo.name}: no face found ({w}x{h} px). Use a photo where one face is clearly "
                                "visible, roughly frontal, at least 40 px wide.")
    face = faces[0]
    if face.width < min_face_px:
        raise FaceNotFoundError(f"{photo.name}: the largest face is only {face.width:.0f} px wide (need at least "
                                f"{min_face_px:.0f} px); use a larger or closer photo.")
    message = None
    if len(faces) > 1:
        message = (f"{photo.name}: {len(faces)} faces found; using the largest ({face.width:.0f} px wide, box "
                   f"{', '.join(f'{v:.0f}' for v in face.box)}).")
    return FacePick(face, len(faces), message)


MIRROR_ORDER = (1, 0, 2, 4, 3)  # a mirrored photo's landmarks in the original's order (left/right swap)


def mirror_averaged(photo: Photo, face: Face) -> Face:
    """``face`` with its landmarks averaged with those MTCNN finds on the mirrored photo, mirrored back.

    MTCNN's landmark noise is not mirror-symmetric; the average cancels its odd part (a yaw bias of the camera
    estimate per face). The mirrored detection whose box overlaps ``face``'s mirror image most is used; when
    there is none, ``face`` is returned unchanged."""
    w = photo.pixels.shape[1]
    flipped = Photo(np.ascontiguousarray(photo.pixels[:, ::-1]), photo.name)
    box = np.array([w - face.box[2], face.box[1], w - face.box[0], face.box[3]])

    def overlap(f: Face) -> float:
        x0, y0 = np.maximum(f.box[:2], box[:2])
        x1, y1 = np.minimum(f.box[2:], box[2:])
        inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
        return inter / (f.area + face.area - inter + 1e-9)

    found = [f for f in detect_faces(flipped) if overlap(f) > 0.5]
    if not found:
        return face
    back = max(found, key=overlap).landmarks[list(MIRROR_ORDER)].copy()
    back[:, 0] = w - back[:, 0]
    return Face(face.box, 0.5 * (face.landmarks + back), face.probability)
