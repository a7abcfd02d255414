"""Everything ``python -m training.directions`` computes for one model file, as a function.

Order: load the generator and hash its file; w statistics and PCA sliders (:func:`core.editing.pca_direction_set`);
3D-measured sliders for each box that holds Gaussians of this model; attribute sliders from a classifier
(trained here on ``data`` or loaded from ``classifier``); user-taught sliders of an existing directions file
for the same model are kept. The result is saved beside the model unless ``out`` says otherwise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from core.editing import (
    DEFAULT_MEASUREMENTS, DirectionSet, DirectionsFileError, directions_path, file_sha256, fit_measured_directions,
    load_directions, pca_direction_set, save_directions,
)
from core.editing.direction_file import SUFFIX as DIRECTIONS_SUFFIX
from core.editing.pca import sample_ws
from core.model_files import load_generator


@dataclass(frozen=True)
class DirectionsOptions:
    """Compute PCA, 3D-measured and attribute sliders for a generator and save them beside it.

    Attributes:
        model: generator file (ours, an official CGS-GAN pickle or a GGHead checkpoint-<kimg>.pkl).
        data: labelled synthetic dataset (folder or zip with attributes.jsonl) to train the attribute
            classifier on; without it and without --classifier no attribute sliders are made.
        out: directions file (default: beside the model, model.safetensors -> model.directions.npz).
        classifier: use this trained classifier instead of training one.
        classifier_out: where to save a newly trained classifier (default: model.classifier.pt beside --out).
        pca_samples: w samples for the statistics and PCA.
        pca_components: PCA sliders (0: none).
        attribute_samples: generated heads labelled by the classifier for the boundary fits.
        measured_samples: generated heads measured for the 3D-measured sliders (0: none).
        epochs: classifier training epochs.
        classifier_resolution: classifier input size (px, multiple of 16).
        max_images: use at most this many dataset images (None: all).
        yaws: camera yaws (deg) the labelled heads are rendered from (scores are averaged).
        orthogonal: orthogonalise the attribute sliders against each other.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        seed: seeds every sample.
    """

    model: Path
    data: Path | None = None
    out: Path | None = None
    classifier: Path | None = None
    classifier_out: Path | None = None
    pca_samples: int = 10_000
    pca_components: int = 20
    attribute_samples: int = 2000
    measured_samples: int = 500
    epochs: int = 20
    classifier_resolution: int = 64
    max_images: int | None = None
    yaws: tuple[float, ...] = (0.0,)
    orthogonal: bool = True
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("pca_samples", "attribute_samples"):
            if getattr(self, name) < 2:
                problems.append(f"--{name.replace('_', '-')} must be >= 2")
        if self.pca_components < 0 or self.measured_samples < 0 or self.epochs < 1:
            problems.append("--pca-components and --measured-samples must be >= 0, --epochs >= 1")
        if self.classifier_resolution < 16 or self.classifier_resolution % 16:
            problems.append(f"--classifier-resolution must be a multiple of 16, got {self.classifier_resolution}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def out_path(self) -> Path:
        return Path(self.out) if self.out is not None else Path(directions_path(self.model))

    @property
    def classifier_out_path(self) -> Path:
        if self.classifier_out is not None:
            return Path(self.classifier_out)
        name = self.out_path.name
        for ext in reversed(DIRECTIONS_SUFFIX.split(".")[1:]):  # "x.directions.npz", "x.npz", "x.directions" -> "x"
            name = name.removesuffix("." + ext)
        return self.out_path.with_name(name + ".classifier.pt")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def compute_directions(opt: DirectionsOptions, progress: bool = True) -> DirectionSet:
    """Run everything (see the module docstring), save the file, return the set."""
    if not Path(opt.model).exists():
        raise FileNotFoundError(f"{opt.model}: no such model file")
    if opt.data is not None and not Path(opt.data).exists():
        raise FileNotFoundError(f"{opt.data}: no such dataset")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opt.device == "auto" else opt.device)
    G = load_generator(opt.model, device=device).generator
    sha = file_sha256(opt.model)
    log(f"model {opt.model} (SHA-256 {sha[:12]}...), {G.config.num_gaussians:,} Gaussians, on {device}")
    dirs = pca_direction_set(G, sha, opt.pca_samples, opt.pca_components, seed=opt.seed)
    shown = ", ".join(f"{d.name} {d.note.split(' of')[0]}" for d in dirs.directions[:5])
    more = " ..." if opt.pca_components > 5 else ""
    log(f"PCA: {opt.pca_components} components of {opt.pca_samples} w; {shown}{more}")
    if opt.measured_samples:
        dirs = _add_measured(G, dirs, opt, progress)
    if opt.data is not None or opt.classifier is not None:
        dirs = _add_attributes(G, dirs, opt, device, progress)
    dirs = _keep_user_directions(dirs, opt.out_path, sha)
    opt.out_path.parent.mkdir(parents=True, exist_ok=True)
    save_directions(dirs, opt.out_path, model_file=str(opt.model))
    log(f"saved {len(dirs.directions)} sliders to {opt.out_path}: {', '.join(dirs.names)}")
    return dirs


def _add_measured(G, dirs: DirectionSet, opt: DirectionsOptions, progress: bool) -> DirectionSet:
    ws = sample_ws(G, opt.measured_samples, seed=opt.seed + 2)
    for m in DEFAULT_MEASUREMENTS:
        try:
            found = fit_measured_directions(G, m, dirs, ws)
        except ValueError as exc:
            log(f"measured slider {m.name} skipped: {exc}")
            continue
        dirs = dirs.with_measurement(m, found)
        log(f"measured slider {m.name}: " + "; ".join(f"{d.name} ({d.note})" for d in found))
    return dirs


def _add_attributes(G, dirs: DirectionSet, opt: DirectionsOptions, device: torch.device, progress: bool
                    ) -> DirectionSet:
    from training.directions.attribute_fit import fit_attribute_directions
    from training.directions.classifier import load_classifier, save_classifier, train_classifier
    from training.directions.labelled_images import load_labelled_images

    if opt.classifier is not None:
        classifier = load_classifier(opt.classifier, device)
        log(f"classifier {opt.classifier}: {', '.join(classifier.names)}")
    else:
        data = load_labelled_images(opt.data, opt.classifier_resolution, opt.max_images, progress=progress)
        log(f"training the attribute classifier on {len(data)} images of {opt.data} for {opt.epochs} epochs")
        classifier = None
        for classifier, report in train_classifier(data, epochs=opt.epochs, seed=opt.seed):
            log("  " + report.summary())
        assert classifier is not None
        save_classifier(classifier, opt.classifier_out_path)
        log(f"saved the classifier to {opt.classifier_out_path}")
        classifier = classifier.to(device)
    fit = fit_attribute_directions(G, classifier, dirs, opt.attribute_samples, seed=opt.seed + 1,
                                   yaws_deg=tuple(opt.yaws), orthogonal=opt.orthogonal, progress=progress)
    for name, reason in fit.skipped:
        log(f"attribute slider {name} skipped: {reason}")
    for d in fit.directions:
        log(f"attribute slider {d.name}: {d.note}")
    return dirs.with_directions(fit.directions)


def _keep_user_directions(dirs: DirectionSet, out: Path, sha: str) -> DirectionSet:
    if not out.exists():
        return dirs
    try:
        old = load_directions(out, model_sha256=sha)
    except (DirectionsFileError, OSError):
        return dirs  # another model's or an unreadable file: replaced
    user = [d for d in old.of_kind("user") if d.name not in dirs.names]
    if user:
        log(f"kept {len(user)} user-taught slider(s) of the existing file: {', '.join(d.name for d in user)}")
    return dirs.with_directions(user)
