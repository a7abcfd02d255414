"""Reading input photos into one format: ``uint8 [H, W, 3]`` RGB, upright.

- EXIF orientation is honoured (a phone photo taken sideways comes out upright).
- RGBA and LA are composited on white (the generators render on white); greyscale and palette images become
  RGB; 16-bit images are scaled to 8 bits.
- Unreadable, truncated or non-image files raise :class:`PhotoError` naming the file and the reason; so do
  paths that are not regular files (FIFOs, devices, folders) and headers that claim more than
  :data:`MAX_PIXELS` (checked before decoding). Photos above :data:`MAX_SIDE` are downscaled to it.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.regular_file import open_regular

MIN_SIDE = 16  # px; anything smaller cannot hold a detectable face
MAX_PIXELS = 50_000_000  # a header claiming more is refused before decoding (48 MP phone photos pass)
MAX_SIDE = 4096  # px; larger photos are downscaled to this on load
# what file dialogs offer for photos (load_photo reads whatever Pillow reads)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


class PhotoError(ValueError):
    """A photo could not be used; ``str(err)`` is a complete message for the user."""


@dataclass(frozen=True, eq=False)
class Photo:
    """One input image.

    Attributes:
        pixels: ``uint8 [H, W, 3]`` RGB, upright (EXIF applied), alpha composited on white.
        name: a label for messages and output files (the file name, or ``"frame 3"`` for webcam frames).
    """

    pixels: np.ndarray
    name: str


def load_photo(path: str | os.PathLike) -> Photo:
    """Read a jpg/png/webp/... file (see the module docstring); :class:`PhotoError` if it cannot be used.

    The pixel count is checked from the header before anything is decoded (:data:`MAX_PIXELS`); photos
    larger than :data:`MAX_SIDE` are decoded at a reduced scale where the format allows it (JPEG) and
    downscaled to it, so memory stays at a few times ``MAX_SIDE**2`` whatever the file claims.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        f = open_regular(path, "an image file", error=lambda p: PhotoError(f"{path}: {p}"),
                         folder_error=lambda p: PhotoError(f"{path}: is a folder, not an image"))
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file") from None
    except OSError as exc:
        raise PhotoError(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is stricter
            with Image.open(f) as im:
                _check_pixels(path, im.size)
                _draft(im)
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = to_rgb(_shrink(im))
    except UnidentifiedImageError:
        raise PhotoError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, met while reading the header
        raise PhotoError(f"{path}: the image claims more than {MAX_PIXELS / 1e6:.0f} MP ({exc}); not "
                         "decoded. Scale the photo down (a face needs about 512 px) and try again.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise PhotoError(f"{path}: the image is corrupt or truncated ({exc})") from None
    return photo_from_array(rgb, name)


def _check_pixels(path: str, size: tuple[int, int]) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise PhotoError(f"{path}: {w}x{h} px ({w * h / 1e6:.0f} MP) is over the limit of "
                         f"{MAX_PIXELS / 1e6:.0f} MP; not decoded. Scale the photo down (a face needs about "
                         "512 px) and try again.")


def _draft(im: Image.Image) -> None:
    """Ask the decoder for a reduced scale (JPEG: 1/2, 1/4, 1/8) when the photo is above MAX_SIDE."""
    w, h = im.size
    if max(w, h) > MAX_SIDE and im.format == "JPEG":
        k = max(w, h) / MAX_SIDE
        im.draft("RGB", (math.ceil(w / k), math.ceil(h / k)))


def _shrink(im: Image.Image) -> Image.Image:
    """The image with its longer side at most MAX_SIDE (area-averaged; 16-bit and float modes go through
    8-bit RGB first)."""
    w, h = im.size
    if max(w, h) <= MAX_SIDE:
        return im
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = Image.fromarray(to_rgb(im).squeeze())
    k = MAX_SIDE / max(w, h)
    return im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BOX)


def photo_from_array(pixels: np.ndarray, name: str = "frame") -> Photo:
    """A :class:`Photo` from an array (webcam frame, scikit-image sample): ``[H, W]`` grey, ``[H, W, 3]`` RGB or
    ``[H, W, 4]`` RGBA; uint8, uint16, bool or float in [0, 1]."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise PhotoError(f"{name}: expected an image array [H, W], [H, W, 3] or [H, W, 4], "
                         f"got shape {list(a.shape)}")
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 65535.0)
    if a.dtype == bool:
        a = a.astype(np.float64)
    if a.dtype != np.uint8:
        af = a.astype(np.float64)
        if not np.isfinite(af).all():
            raise PhotoError(f"{name}: the image has non-finite values")
        a = (np.clip(af, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.shape[2] in (2, 4):  # composite on white
        alpha = a[..., -1:].astype(np.float32) / 255.0
        colour = a[..., :-1].astype(np.float32)
        a = (colour * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if min(a.shape[:2]) < MIN_SIDE:
        raise PhotoError(f"{name}: the image is only {a.shape[1]}x{a.shape[0]} px; too small to hold a face")
    return Photo(np.ascontiguousarray(a), name)


def to_rgb(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> ``uint8 [H, W, C]`` with C in (1, 2, 3, 4) (alpha kept for compositing)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        return (np.clip(a / (65535.0 if a.max() > 255 else 255.0), 0, 1) * 255 + 0.5).astype(np.uint8)
    if im.mode == "F":
        return (np.clip(np.asarray(im, dtype=np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "1":
        im = im.convert("L")
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    return np.asarray(im, dtype=np.uint8)
