"""How well the sliders work: a disentanglement table and 3D consistency along each slider.

``python -m training.directions.evaluate --model X.safetensors --classifier X.classifier.pt [--directions ...]``

Disentanglement (:func:`disentanglement_table`): for ``num_heads`` fresh heads (z ~ N(0, I), psi = 1, a seed
not used for fitting), every slider is moved to ``-delta`` and ``+delta`` (std units) and the classifier
scores the frontal renders. Entry (slider s, score a) = mean over heads of
``(score_a(+delta) - score_a(-delta)) / (2 delta)`` divided by the std of score a over the unedited heads:
"score standard deviations per slider unit". A disentangled slider has a large diagonal entry and small
off-diagonal ones.

Drift (:func:`slider_drift`): at each slider value the edited heads get the ground-truth-free 3D consistency
metric of the training issue (:func:`training.metrics.consistency.reprojection_consistency`: PSNR between
two views 20 deg apart and the depth spread), plus the mean absolute change of the *other* classifier
scores (std units) and the mean absolute pixel change of the frontal render (``image_l1``, colours in
[0, 1]) relative to the unedited head. An edit that keeps PSNR/depth spread near their values at 0 keeps the
head a consistent 3D object; small off-target changes mean the identity is kept.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.camera import orbit_cameras
from core.editing import DirectionSet, apply_sliders, find_directions, load_directions
from core.editing.pca import sample_ws
from training.directions.attribute_fit import classify_ws, render_heads
from training.directions.classifier import AttributeClassifier
from training.metrics.consistency import ConsistencyResult, reprojection_consistency, yaw_offset_cameras


@dataclass(frozen=True, eq=False)
class DisentanglementTable:
    """Attributes:
        sliders: row names; scores: column names (classifier outputs).
        effect: ``[S, A]`` score std per slider unit (see the module docstring).
        score_std: ``[A]`` std of each score over the unedited heads (its units).
        delta: slider half-range used; num_heads: heads averaged.
    """

    sliders: tuple[str, ...]
    scores: tuple[str, ...]
    effect: np.ndarray
    score_std: np.ndarray
    delta: float
    num_heads: int

    def markdown(self) -> str:
        head = "| slider \\ score | " + " | ".join(self.scores) + " |"
        rule = "|---" * (len(self.scores) + 1) + "|"
        rows = []
        for i, s in enumerate(self.sliders):
            cells = []
            for j, a in enumerate(self.scores):
                v = f"{self.effect[i, j]:+.2f}"
                cells.append(f"**{v}**" if s == a else v)
            rows.append(f"| {s} | " + " | ".join(cells) + " |")
        return "\n".join([head, rule] + rows)


@dataclass(frozen=True)
class DriftRow:
    """One slider value: 3D consistency of the edited heads and how far they drifted (module docstring)."""

    slider: str
    value: float
    psnr: float
    depth_spread: float
    off_target: float
    image_l1: float


def _edited(base: torch.Tensor, dirs: DirectionSet, slider: str, value: float) -> torch.Tensor:
    return apply_sliders(base, dirs, {slider: value})


def disentanglement_table(G: torch.nn.Module, classifier: AttributeClassifier, dirs: DirectionSet,
                          sliders: tuple[str, ...], num_heads: int = 32, delta: float = 1.5, seed: int = 100,
                          progress: bool = True) -> DisentanglementTable:
    base = sample_ws(G, num_heads, seed=seed).float()[:, None].expand(-1, dirs.num_ws, -1).contiguous()
    s0 = classify_ws(G, classifier, base)
    std = s0.std(0).clip(min=1e-6)
    effect = np.zeros((len(sliders), len(classifier.names)))
    for i, name in enumerate(tqdm(sliders, desc="disentanglement", unit="slider", disable=not progress)):
        plus = classify_ws(G, classifier, _edited(base, dirs, name, delta))
        minus = classify_ws(G, classifier, _edited(base, dirs, name, -delta))
        effect[i] = ((plus - minus) / (2 * delta)).mean(0) / std
    return DisentanglementTable(tuple(sliders), tuple(classifier.names), effect, std, delta, num_heads)


def _consistency(G: torch.nn.Module, ws: torch.Tensor, resolution: int, yaw_offset_deg: float = 20.0
                 ) -> ConsistencyResult:
    device = next(G.parameters()).device
    cam_a = orbit_cameras(0.0, 0.0).to(device)
    cam_b = yaw_offset_cameras(cam_a, yaw_offset_deg)
    parts = []
    with torch.no_grad():
        scenes = G.synthesis(ws.to(device)).gaussians
        for scene in scenes.unbind():
            parts.append(reprojection_consistency(scene, cam_a, cam_b, resolution))
    return ConsistencyResult.pool(parts)


def slider_drift(G: torch.nn.Module, classifier: AttributeClassifier | None, dirs: DirectionSet,
                 sliders: tuple[str, ...], values: tuple[float, ...] = (-3.0, -1.5, 0.0, 1.5, 3.0),
                 num_heads: int = 16, resolution: int = 64, seed: int = 200, progress: bool = True
                 ) -> tuple[DriftRow, ...]:
    """See the module docstring; without a classifier ``off_target`` is NaN."""
    base = sample_ws(G, num_heads, seed=seed).float()[:, None].expand(-1, dirs.num_ws, -1).contiguous()
    img0 = render_heads(G, base, resolution).float() / 255
    s0 = classify_ws(G, classifier, base) if classifier is not None else None
    std = s0.std(0).clip(min=1e-6) if s0 is not None else None
    rows = []
    for name in tqdm(sliders, desc="drift", unit="slider", disable=not progress):
        for v in values:
            ws = _edited(base, dirs, name, v)
            c = _consistency(G, ws, resolution)
            img = render_heads(G, ws, resolution).float() / 255
            off = float("nan")
            if classifier is not None:
                d = np.abs(classify_ws(G, classifier, ws) - s0).mean(0) / std
                others = [j for j, n in enumerate(classifier.names) if n != name]
                off = float(d[others].mean()) if others else float("nan")
            rows.append(DriftRow(name, v, c.psnr, c.depth_spread, off, float((img - img0).abs().mean())))
    return tuple(rows)


def drift_markdown(rows: tuple[DriftRow, ...]) -> str:
    lines = ["| slider | value | consistency PSNR (dB) | depth spread | off-target score change (std) | image L1 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.slider} | {r.value:+.1f} | {r.psnr:.2f} | {r.depth_spread:.4f} | {r.off_target:.3f} | "
                     f"{r.image_l1:.4f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class EvaluateOptions:
    """Measure the sliders of a generator: disentanglement table and drift along each slider.

    Attributes:
        model: generator file.
        classifier: attribute classifier (written by python -m training.directions).
        directions: directions file (default: beside the model).
        sliders: sliders to measure (default: every attribute and measured slider).
        num_heads: heads for the disentanglement table.
        drift_heads: heads for the drift rows.
        delta: slider half-range of the table (std units).
        values: slider values of the drift rows.
        resolution: render size of the consistency metric (px).
        out: also write the Markdown report and a .json of the numbers here.
        device: "auto", "cpu", "cuda", ...
        seed: seeds the evaluation heads (use one not used for fitting).
    """

    model: Path
    classifier: Path
    directions: Path | None = None
    sliders: tuple[str, ...] = ()
    num_heads: int = 32
    drift_heads: int = 16
    delta: float = 1.5
    values: tuple[float, ...] = (-3.0, -1.5, 0.0, 1.5, 3.0)
    resolution: int = 64
    out: Path | None = None
    device: str = "auto"
    seed: int = 100


def evaluate(opt: EvaluateOptions, progress: bool = True) -> str:
    """Run both measurements; return (and optionally write) the Markdown report."""
    from core.model_files import load_generator
    from training.directions.classifier import load_classifier

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if opt.device == "auto" else opt.device)
    G = load_generator(opt.model, device=device).generator
    dirs = load_directions(opt.directions, model_path=opt.model) if opt.directions else find_directions(opt.model)
    if dirs is None:
        raise FileNotFoundError(f"no directions file beside {opt.model}; run python -m training.directions first")
    classifier = load_classifier(opt.classifier, device)
    sliders = opt.sliders or tuple(d.name for d in dirs.directions if d.kind in ("attribute", "measured", "user"))
    for s in sliders:
        dirs.get(s)
    table = disentanglement_table(G, classifier, dirs, sliders, opt.num_heads, opt.delta, opt.seed, progress)
    rows = slider_drift(G, classifier, dirs, sliders, opt.values, opt.drift_heads, opt.resolution, opt.seed + 1,
                        progress)
    report = (f"Disentanglement ({table.num_heads} heads, slider +-{table.delta} std; entries: score std per "
              f"slider unit; score std: " + ", ".join(f"{n} {s:.3f}" for n, s in zip(table.scores, table.score_std))
              + ")\n\n" + table.markdown() + f"\n\nDrift along each slider ({opt.drift_heads} heads, "
              f"{opt.resolution} px, views 20 deg apart)\n\n" + drift_markdown(rows) + "\n")
    if opt.out is not None:
        Path(opt.out).write_text(report)
        Path(opt.out).with_suffix(".json").write_text(json.dumps(
            {"sliders": table.sliders, "scores": table.scores, "effect": table.effect.tolist(),
             "score_std": table.score_std.tolist(), "drift": [asdict(r) for r in rows]}, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    import tyro

    try:
        opt = tyro.cli(EvaluateOptions, args=argv, prog="python -m training.directions.evaluate",
                       description=__doc__.split("\n\n")[0])
        print(evaluate(opt, progress=sys.stderr.isatty()))
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
