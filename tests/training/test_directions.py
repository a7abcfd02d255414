"""Attribute sliders from a classifier, the classifier itself, and the directions / evaluation CLIs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.editing import LatentEdit, apply_sliders, base_from_seed, find_directions, pca_direction_set
from core.generator import PRESETS, Generator
from core.model_files import save_generator
from training.directions.attribute_fit import classify_ws, fit_attribute_directions, render_heads
from training.directions.attribute_specs import ATTRIBUTES
from training.directions.classifier import load_classifier, save_classifier, train_classifier
from training.directions.labelled_images import LabelledImages


def w_sensitive_tiny_generator(seed: int = 0) -> Generator:
    """The tiny preset with its zero-initialised layer scales randomised, so the output depends on w."""
    torch.manual_seed(seed)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        for block in G.transformer.modules():
            if hasattr(block, "scale1"):
                block.scale1.weight.normal_(0, 0.5)
                block.scale2.weight.normal_(0, 0.5)
    return G


class DarknessScorer(nn.Module):
    """A stand-in classifier: ``darkness`` = 255 - mean pixel (continuous) and ``is_dark`` (binary)."""

    names = ("darkness", "is_dark")
    kinds = ("continuous", "binary")
    resolution = 32

    def __init__(self, threshold: float = 0.0, spread: float = 1.0) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.threshold, self.spread = threshold, spread

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        d = 255.0 - images.float().mean(dim=(1, 2, 3))
        return torch.stack([d, torch.sigmoid((d - self.threshold) / self.spread)], dim=1)


@pytest.mark.slow
def test_learned_direction_moves_its_classifier_score_monotonically():
    G = w_sensitive_tiny_generator()
    dirs = pca_direction_set(G, "c" * 64, num_samples=1000, num_components=0)
    probe = DarknessScorer()
    from core.editing.pca import sample_ws

    d = classify_ws(G, probe, sample_ws(G, 32, seed=9))[:, 0]
    scorer = DarknessScorer(threshold=float(np.median(d)), spread=float(d.std()) / 4)
    fit = fit_attribute_directions(G, scorer, dirs, num_samples=96, seed=1, min_class=10, progress=False)
    assert {x.name for x in fit.directions} == {"darkness", "is_dark"} and not fit.skipped
    heads = torch.stack([base_from_seed(G, s, psi=1.0) for s in (21, 22, 23, 24)])
    values = (-3.0, -1.5, 0.0, 1.5, 3.0)
    for j, name in enumerate(scorer.names):
        means = [classify_ws(G, scorer, apply_sliders(heads, dirs.with_directions(fit.directions), {name: v}))[:, j]
                 .mean() for v in values]
        assert all(b > a for a, b in zip(means, means[1:])), (name, means)


def _fake_images(n: int = 32, res: int = 16, seed: int = 0) -> LabelledImages:
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, len(ATTRIBUTES), generator=g)
    values[:, :2] = (values[:, :2] > 0.5).float()
    # Make the first attribute visible: a dark square when true.
    images = torch.full((n, 3, res, res), 230, dtype=torch.uint8)
    images[values[:, 0] > 0.5, :, 4:8, 4:12] = 20
    known = torch.ones_like(values, dtype=torch.bool)
    known[::5, 4] = False  # e.g. bald heads have no hair colour
    return LabelledImages(images, values, known, torch.arange(n) // 2, ATTRIBUTES)


@pytest.mark.slow
def test_classifier_trains_and_round_trips(tmp_path):
    data = _fake_images()
    reports = []
    for model, report in train_classifier(data, epochs=2, batch=8, lr=5e-3, val_fraction=0.25):
        reports.append(report)
    assert [r.epoch for r in reports] == [1, 2] and all(np.isfinite(r.loss) for r in reports)
    assert dict(reports[-1].val_accuracy).keys() == {"has_glasses", "has_beard"}
    assert "has_glasses acc" in reports[-1].summary()
    path = tmp_path / "cls.pt"
    save_classifier(model, path)
    back = load_classifier(path)
    assert back.names == tuple(s.name for s in ATTRIBUTES)
    torch.testing.assert_close(back.scores(data.images[:4]), model.scores(data.images[:4]))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot load the attribute classifier"):
        load_classifier(tmp_path / "junk.pt")


def test_render_heads_shape():
    G = w_sensitive_tiny_generator()
    ws = torch.stack([base_from_seed(G, s) for s in (1, 2)])
    imgs = render_heads(G, ws, 16, (0.0, 20.0))
    assert imgs.shape == (2, 2, 3, 16, 16) and imgs.dtype == torch.uint8


def test_cli_reports_clear_errors(tmp_path, capsys):
    from training.directions.__main__ import main

    assert main(["--model", str(tmp_path / "missing.pkl")]) == 2
    assert "no such model file" in capsys.readouterr().err
    model = tmp_path / "m.pkl"
    save_generator(w_sensitive_tiny_generator(), model)
    (tmp_path / "not_a_dataset").mkdir()
    assert main(["--model", str(model), "--data", str(tmp_path / "not_a_dataset"), "--pca-samples", "50",
                 "--pca-components", "2", "--measured-samples", "0"]) == 2
    assert "no attributes.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # tyro reports option errors itself, with status 2
        main(["--model", str(model), "--classifier-resolution", "30"])
    assert exit_info.value.code == 2 and "--classifier-resolution must be" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_end_to_end_on_a_tiny_model_and_dataset(tmp_path, capsys):
    from training.directions.__main__ import main
    from training.directions.evaluate import main as evaluate_main
    from training.synthetic_heads.config import DatasetConfig
    from training.synthetic_heads.dataset import write_dataset

    data = tmp_path / "heads"
    write_dataset(DatasetConfig(out=data, num_identities=10, views_per_identity=2, resolution=32, workers=1),
                  progress=False)
    model = tmp_path / "model.pkl"
    save_generator(w_sensitive_tiny_generator(), model)
    args = ["--model", str(model), "--data", str(data), "--epochs", "1", "--classifier-resolution", "32",
            "--pca-samples", "300", "--pca-components", "3", "--attribute-samples", "40", "--measured-samples", "16",
            "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    dirs = find_directions(model)
    assert dirs is not None and dirs.names[:3] == ("PCA0", "PCA1", "PCA2")
    assert (tmp_path / "model.classifier.pt").exists()
    attrs = dirs.of_kind("attribute")
    assert attrs, capsys.readouterr().err  # continuous attributes always get a slider
    edit = LatentEdit(base_from_seed(G := w_sensitive_tiny_generator(), 3)).with_value(attrs[0].name, 2.0)
    assert torch.equal(edit.reset_all().ws(dirs), edit.base)
    out = tmp_path / "report.md"
    rc = evaluate_main(["--model", str(model), "--classifier", str(tmp_path / "model.classifier.pt"),
                        "--num-heads", "4", "--drift-heads", "1", "--values", "-1", "0", "1", "--resolution", "32",
                        "--sliders", attrs[0].name, "--out", str(out), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    text = out.read_text()
    assert f"| {attrs[0].name} | " in text and "consistency PSNR" in text
    assert out.with_suffix(".json").exists()
    # A directions file no longer matching its model is refused with the reason.
    with torch.no_grad():
        G.mapping.const += 1  # "retrained": same path, different file
    save_generator(G, model)
    rc = evaluate_main(["--model", str(model), "--classifier", str(tmp_path / "model.classifier.pt")])
    assert rc == 2 and "made for another model" in capsys.readouterr().err
