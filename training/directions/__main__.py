"""``python -m training.directions --model X.safetensors [--data DATASET] [--out X.directions.npz]``.

Computes the latent-editing sliders of a generator (PCA, 3D-measured, attribute sliders from a classifier
trained on the labelled synthetic dataset) and saves them beside the model, where the viewer finds them.
See training/directions/pipeline.py for the options and docs/latent-editing.md for the file format.
"""

from __future__ import annotations

import sys

DESCRIPTION = (
    "Compute latent-editing sliders for a generator file: PCA (GANSpace), 3D-measured (skin/hair colour, head "
    "width) and attribute sliders (InterFaceGAN boundaries from a tiny classifier trained on --data, the "
    "labelled synthetic dataset). Saves model.directions.npz beside the model; the viewer loads it."
)


def main(argv: list[str] | None = None) -> int:
    import tyro

    from training.directions.pipeline import DirectionsOptions, compute_directions

    try:
        opt = tyro.cli(DirectionsOptions, args=argv, prog="python -m training.directions", description=DESCRIPTION)
        compute_directions(opt, progress=sys.stderr.isatty())
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
