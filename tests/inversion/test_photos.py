"""Reading photos: EXIF rotation, RGBA/grey/16-bit inputs, corrupt and missing files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from inversion.photos import PhotoError, load_photo, photo_from_array


def _marked(h: int = 40, w: int = 60) -> np.ndarray:
    """A landscape image with a red block in the top-left corner."""
    a = np.full((h, w, 3), 200, np.uint8)
    a[:10, :10] = (255, 0, 0)
    return a


def test_exif_rotation_is_honoured(tmp_path):
    im = Image.fromarray(_marked())
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "sideways.jpg"
    im.save(path, exif=exif, quality=95)
    p = load_photo(path)
    assert p.pixels.shape == (60, 40, 3)  # portrait after rotation
    assert p.pixels[:10, -10:, 0].mean() > 200 and p.pixels[:10, -10:, 1].mean() < 60  # red now top-right
    assert p.name == "sideways.jpg"


def test_rgba_is_composited_on_white_and_grey_becomes_rgb(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:16, :, 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    p = load_photo(tmp_path / "a.png")
    assert p.pixels.shape == (32, 32, 3)
    assert (p.pixels[0, 0] == (255, 0, 0)).all() and (p.pixels[-1, 0] == (255, 255, 255)).all()
    Image.fromarray(np.full((32, 32), 77, np.uint8), "L").save(tmp_path / "g.png")
    g = load_photo(tmp_path / "g.png")
    assert g.pixels.shape == (32, 32, 3) and (g.pixels == 77).all()


def test_arrays_of_other_types():
    assert photo_from_array(np.full((20, 20), 65535, np.uint16)).pixels.max() == 255
    assert photo_from_array(np.ones((20, 20, 3), np.float32) * 0.5).pixels[0, 0, 0] == 128
    with pytest.raises(PhotoError, match="non-finite"):
        photo_from_array(np.full((20, 20, 3), np.nan))
    with pytest.raises(PhotoError, match="too small"):
        photo_from_array(np.zeros((8, 8, 3), np.uint8), "thumb")


@pytest.mark.parametrize("content, reason", [
    (b"this is not an image at all", "not an image"),
    (None, "corrupt or truncated"),
])
def test_corrupt_files_give_clear_errors(tmp_path, content, reason):
    path = tmp_path / "broken.png"
    if content is None:  # a real PNG cut in half
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=reason) as err:
        load_photo(path)
    assert "broken.png" in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PhotoError, match="no such file"):
        load_photo(tmp_path / "nope.jpg")
    with pytest.raises(PhotoError, match="folder"):
        load_photo(tmp_path)


def test_missing_webcam_is_a_clear_error():
    from inversion.webcam import WebcamError, grab_frames

    with pytest.raises(WebcamError, match="cannot open the camera <video9>"):
        grab_frames(1, device="<video9>")


def test_pixel_limit_is_checked_before_decoding_and_big_photos_are_downscaled(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
    from hostile_files import png_grey, png_header_only

    from inversion.photos import MAX_PIXELS, MAX_SIDE

    assert 10_000 * 6_000 > MAX_PIXELS
    with pytest.raises(PhotoError, match="10000x6000 px \\(60 MP\\) is over the limit of 50 MP; not decoded"):
        load_photo(png_header_only(tmp_path / "h.png", 10_000, 6_000))  # no pixel data at all: never decoded
    with pytest.raises(PhotoError, match="claims more than 50 MP"):
        load_photo(png_header_only(tmp_path / "bomb.png", 20_000, 20_000))  # Pillow's own bomb check
    wide = load_photo(png_grey(tmp_path / "w.png", 6_000, 300, value=77))
    assert wide.pixels.shape == (205, MAX_SIDE, 3) and (wide.pixels == 77).all()
    Image.new("RGB", (5_000, 3_000), (10, 200, 30)).save(tmp_path / "big.jpg", quality=90)
    jpg = load_photo(tmp_path / "big.jpg")
    assert jpg.pixels.shape == (2_458, MAX_SIDE, 3) and np.abs(jpg.pixels.astype(int) - (10, 200, 30)).max() < 8


def test_special_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "f.png")
    with pytest.raises(PhotoError, match="FIFO"):
        load_photo(tmp_path / "f.png")  # never opened: it would block
    with pytest.raises(PhotoError, match="character device"):
        load_photo("/dev/zero")
