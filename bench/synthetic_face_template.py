"""Measure the synthetic heads' mean-face landmarks for :data:`inversion.framing.SYNTHETIC_HEADS`.

For the first ``--heads`` identities of seed 0: render the frontal training view (yaw 0, pitch 0, radius 2.7,
focal 4.2647), run MTCNN, and back-project each of its five landmarks onto the depth of the matching head-model
point (pupil front, nose tip, mouth corner) so that PnP of MTCNN's landmarks against the template is unbiased
for these heads. Prints the median template (symmetrised) as a Python literal.

    python -m bench.synthetic_face_template [--heads 24] [--resolution 256]
"""

from __future__ import annotations

import argparse

import numpy as np

from core.camera import DEFAULT_FOCAL, DEFAULT_RADIUS
from inversion.detection import detect_faces
from inversion.photos import photo_from_array
from training.synthetic_heads.cameras import pose_cameras
from training.synthetic_heads.dataset import identity_seed
from training.synthetic_heads.eyes import eyeball_centre
from training.synthetic_heads.head import HEAD_SCALE, make_head_model
from training.synthetic_heads.skull import head_geometry
from training.synthetic_heads.views import render_views


def model_depths(head) -> np.ndarray:
    """``[5]`` world z of the head-model landmarks (pupil fronts, nose tip, mouth corners)."""
    g = head_geometry(head.attributes)
    z = []
    for side in (-1.0, 1.0):
        gaze = np.array([side * 0.12, 0.0, 1.0])
        z.append(((eyeball_centre(g, side) + g.eye_r * gaze / np.linalg.norm(gaze)) * HEAD_SCALE)[2])
    nose = head.gaussians.means[head.parts["nose"]].numpy()
    z.append(float(nose[:, 2].max()))
    skin = head.gaussians.means[head.parts["skin"]].numpy()
    for side in (-1.0, 1.0):
        x, y = side * g.mouth_half_w * HEAD_SCALE, g.mouth_y * HEAD_SCALE
        near = skin[np.hypot(skin[:, 0] - x, skin[:, 1] - y) < 0.01]
        z.append(float(near[:, 2].max()) if len(near) else z[-1])
    return np.array(z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, default=24)
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args()
    cam = pose_cameras(np.array([0.0]), np.array([0.0]))
    points = []
    for i in range(args.heads):
        head = make_head_model(identity_seed(0, i))
        rgb, _ = render_views(head, cam, args.resolution)
        faces = detect_faces(photo_from_array(rgb[0], f"head {i}"))
        if not faces:
            print(f"head {i}: no face found by MTCNN; skipped")
            continue
        uv = faces[0].landmarks / args.resolution
        z = model_depths(head)
        depth = DEFAULT_RADIUS - z
        x = (uv[:, 0] - 0.5) * depth / DEFAULT_FOCAL
        y = -(uv[:, 1] - 0.5) * depth / DEFAULT_FOCAL
        points.append(np.stack([x, y, z], -1))
    p = np.median(np.array(points), axis=0)
    # Symmetrise: mirror pairs (0, 1) and (3, 4), nose on the midline.
    for a, b in ((0, 1), (3, 4)):
        x, y, z = (p[b, 0] - p[a, 0]) / 2, (p[a, 1] + p[b, 1]) / 2, (p[a, 2] + p[b, 2]) / 2
        p[a], p[b] = (-x, y, z), (x, y, z)
    p[2, 0] = 0.0
    print(f"{len(points)} of {args.heads} heads detected")
    print("landmarks=(" + ", ".join(f"({a:.4f}, {b:.4f}, {c:.4f})" for a, b, c in p) + ")")


if __name__ == "__main__":
    main()
