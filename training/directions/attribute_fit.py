"""Attribute sliders from a classifier (InterFaceGAN): label generated samples, fit boundaries in W.

Samples: z ~ N(0, I) seeded, psi = 1, ``w = mapping(z)`` (one w for every slot). Each head is rendered at the
classifier's resolution on white from ``yaws_deg`` (orbit cameras at the default radius and focal, pitch 0)
and its scores are averaged over the views. Binary attributes get a logistic boundary on ``score > 0.5``
(skipped when the minority class has fewer than ``min_class`` samples: the model rarely makes it);
continuous ones a ridge regression of the score. The normals are then orthogonalised against each other
(:func:`core.editing.boundary.orthogonalize`) and given the model's slider unit (std of w along them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from core.camera import orbit_cameras
from core.editing import Direction, DirectionSet, fit_binary_boundary, fit_regression_direction, orthogonalize
from core.editing.pca import sample_ws
from core.render import render
from training.directions.classifier import AttributeClassifier

DEFAULT_YAWS_DEG = (0.0,)


def render_heads(G: torch.nn.Module, ws: torch.Tensor, resolution: int, yaws_deg: tuple[float, ...] = DEFAULT_YAWS_DEG
                 ) -> torch.Tensor:
    """``ws [B, num_ws, w_dim]`` -> uint8 ``[B, V, 3, R, R]`` renders on white from the yaws (deg), pitch 0."""
    device = next(G.parameters()).device
    cams = orbit_cameras(torch.tensor(yaws_deg).deg2rad(), 0.0).to(device)
    with torch.no_grad():
        gs = G.synthesis(ws.to(device=device, dtype=torch.float32)).gaussians
        rgb = render(gs, cams, resolution, resolution, background=[1.0, 1.0, 1.0], mode="rgb").color
    return (rgb * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(0, 1, 4, 2, 3).cpu()


def classify_ws(G: torch.nn.Module, classifier: AttributeClassifier, ws: torch.Tensor,
                yaws_deg: tuple[float, ...] = DEFAULT_YAWS_DEG, batch: int = 16, progress: bool = False
                ) -> np.ndarray:
    """``ws [N, num_ws, w_dim]`` (or ``[N, w_dim]``) -> ``[N, A]`` float64 classifier scores, view-averaged."""
    if ws.dim() == 2:
        ws = ws[:, None].expand(-1, G.config.num_ws, -1)
    out = []
    for start in tqdm(range(0, ws.shape[0], batch), desc="labelling samples", unit="batch", disable=not progress):
        imgs = render_heads(G, ws[start:start + batch], classifier.resolution, yaws_deg)
        B, V = imgs.shape[:2]
        with torch.no_grad():
            s = classifier.scores(imgs.reshape(B * V, *imgs.shape[2:]).to(next(classifier.parameters()).device))
        out.append(s.reshape(B, V, -1).mean(1).double().cpu())
    return torch.cat(out).numpy()


@dataclass(frozen=True)
class AttributeFit:
    """Attributes:
        directions: the fitted (and, if asked, orthogonalised) sliders.
        skipped: ``(name, reason)`` for attributes that got no slider.
        score_mean, score_std: ``(name, value)`` statistics of the sample scores.
    """

    directions: tuple[Direction, ...]
    skipped: tuple[tuple[str, str], ...]
    score_mean: tuple[tuple[str, float], ...]
    score_std: tuple[tuple[str, float], ...]


def fit_attribute_directions(G: torch.nn.Module, classifier: AttributeClassifier, directions: DirectionSet,
                             num_samples: int = 2000, seed: int = 1, yaws_deg: tuple[float, ...] = DEFAULT_YAWS_DEG,
                             orthogonal: bool = True, min_class: int = 20, batch: int = 16,
                             progress: bool = True) -> AttributeFit:
    """See the module docstring. ``directions`` supplies the w statistics (slider units)."""
    ws = sample_ws(G, num_samples, seed=seed)
    scores = classify_ws(G, classifier, ws, yaws_deg, batch, progress)
    fitted, skipped = [], []
    for j, (name, kind) in enumerate(zip(classifier.names, classifier.kinds)):
        s = scores[:, j]
        if kind == "binary":
            labels = s > 0.5
            minority = int(min(labels.sum(), (~labels).sum()))
            if minority < min_class:
                skipped.append((name, f"only {minority} of {num_samples} samples on one side of 0.5 "
                                      f"(need {min_class}); the model rarely varies it"))
                continue
            b = fit_binary_boundary(ws, labels, center=directions.stats.mean)
            note = (f"logistic boundary, {int(labels.sum())} yes / {int((~labels).sum())} no, "
                    f"train acc {b.train_score:.3f}")
        else:
            if float(np.std(s)) < 1e-6:
                skipped.append((name, "classifier scores do not vary over the samples"))
                continue
            b = fit_regression_direction(ws, s)
            note = f"ridge regression of the score on w, {num_samples} samples, R^2 {b.train_score:.3f}"
        fitted.append(directions.make_direction(name, "attribute", b.normal, note=note))
    if orthogonal and len(fitted) > 1:
        fitted = list(orthogonalize(fitted, directions))
    names = classifier.names
    return AttributeFit(tuple(fitted), tuple(skipped), tuple(zip(names, scores.mean(0).tolist())),
                        tuple(zip(names, scores.std(0).tolist())))
