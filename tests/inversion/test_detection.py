"""Face detection on real photos (scikit-image's astronaut) and the user-facing messages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inversion.detection import Face, FaceNotFoundError, detect_faces, mirror_averaged, pick_face
from inversion.photos import photo_from_array
from inversion.preprocess import PreprocessConfig, preprocess_photos


def test_no_face_is_a_clear_error():
    noise = np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    photo = photo_from_array(noise, "noise.png")
    with pytest.raises(FaceNotFoundError, match="noise.png: no face found"):
        pick_face(photo, detect_faces(photo))


@pytest.mark.slow
def test_largest_of_several_faces_is_picked_and_said(astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.LANCZOS))
    canvas = np.full((512, 768, 3), 255, np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 512:] = small
    photo = photo_from_array(canvas, "two.png")
    faces = detect_faces(photo)
    assert len(faces) == 2
    pick = pick_face(photo, faces)
    assert pick.face.box[0] < 512 and pick.faces_found == 2
    assert "2 faces found; using the largest" in pick.message


def test_tiny_face_is_refused_with_its_size():
    photo = photo_from_array(np.zeros((100, 100, 3), np.uint8), "far.jpg")
    face = Face(np.array([10.0, 10.0, 30.0, 34.0]), np.zeros((5, 2)), 0.99)
    with pytest.raises(FaceNotFoundError, match="only 20 px wide"):
        pick_face(photo, [face])


@pytest.mark.slow
def test_preprocess_skips_bad_inputs_without_raising(tmp_path, astronaut):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    good = photo_from_array(astronaut, "astronaut.png")
    res = preprocess_photos([bad, good], PreprocessConfig(resolution=64))
    assert [a.name for a in res.aligned] == ["astronaut.png"]
    assert len(res.problems) == 1 and "bad.jpg" in res.problems[0]
    a = res.aligned[0]
    assert a.image.shape == (64, 64, 3) and a.weight.shape == (64, 64)
    assert abs(a.camera.yaw_deg) < 15  # a frontal portrait


@pytest.mark.slow
def test_real_portraits_get_plausible_cameras(astronaut):
    """scikit-image's two portraits: the astronaut looks into the camera, the cameraman is turned to his left
    (toward image right), so the camera sits on his right side: negative yaw."""
    from skimage import data

    res = preprocess_photos([photo_from_array(astronaut, "astronaut"), photo_from_array(data.camera(), "camera")],
                            PreprocessConfig(resolution=64))
    assert not res.problems
    front, side = res.aligned
    assert abs(front.camera.yaw_deg) < 15 and abs(front.camera.pitch_deg) < 20
    assert -75 < side.camera.yaw_deg < -30
    assert front.camera.rms_px_norm < 0.03 and side.camera.rms_px_norm < 0.03


def test_large_photos_are_searched_downscaled_in_their_own_pixels(astronaut):
    """A 2560 px photo is searched at DETECT_MAX_SIDE; boxes and landmarks come back in the photo's pixels."""
    from inversion.detection import DETECT_MAX_SIDE

    small = detect_faces(photo_from_array(astronaut, "a.png"))[0]
    big = np.asarray(Image.fromarray(astronaut).resize((2560, 2560), Image.BICUBIC))
    assert max(big.shape) > DETECT_MAX_SIDE
    face = detect_faces(photo_from_array(big, "big.png"))[0]
    np.testing.assert_allclose(face.box, small.box * 5, atol=25)
    np.testing.assert_allclose(face.landmarks, small.landmarks * 5, atol=25)


@pytest.mark.parametrize("side", [16, 17, 18, 19, 20])
def test_images_too_small_for_mtcnn_give_no_face_found(side):
    """MTCNN's pyramid is empty below 20 px (it used to fail with torch.cat on an empty list)."""
    photo = photo_from_array(np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8), "t.png")
    assert detect_faces(photo) == []
    with pytest.raises(FaceNotFoundError, match=f"t.png: no face found \\({side}x{side} px\\)"):
        pick_face(photo, detect_faces(photo))


def test_mirror_averaged_landmarks_are_mirror_symmetric(astronaut):
    """Averaging with the mirrored photo's landmarks gives the same face for a photo and its mirror image
    (mirrored), keeps the landmarks' order (image-left eye first) and moves them by at most a few pixels."""
    photo = photo_from_array(astronaut, "a.png")
    flipped = photo_from_array(np.ascontiguousarray(astronaut[:, ::-1]), "b.png")
    face, face_f = detect_faces(photo)[0], detect_faces(flipped)[0]
    avg, avg_f = mirror_averaged(photo, face), mirror_averaged(flipped, face_f)
    w = astronaut.shape[1]
    back = avg_f.landmarks[[1, 0, 2, 4, 3]].copy()
    back[:, 0] = w - back[:, 0]
    np.testing.assert_allclose(avg.landmarks, back, atol=1e-6)
    assert 0 < np.abs(avg.landmarks - face.landmarks).max() < 6
    assert avg.landmarks[0, 0] < avg.landmarks[1, 0] and avg.landmarks[3, 0] < avg.landmarks[4, 0]
    # no face in the mirror image (a blank photo): the face comes back unchanged
    blank = photo_from_array(np.full((256, 256, 3), 255, np.uint8), "c.png")
    assert mirror_averaged(blank, face) is face
