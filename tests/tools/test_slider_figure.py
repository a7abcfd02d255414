"""tools/slider_figure.py: the slider picture of docs/latent-editing.md, on a tiny model with PCA sliders."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.editing import directions_path, file_sha256, pca_direction_set, save_directions
from core.model_files import save_generator
from tiny_generators import lively_tiny_generator  # tests/tiny_generators.py

_spec = importlib.util.spec_from_file_location("slider_figure", Path(__file__).parents[2] / "tools" /
                                               "slider_figure.py")
slider_figure = importlib.util.module_from_spec(_spec)
sys.modules["slider_figure"] = slider_figure
_spec.loader.exec_module(slider_figure)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("sliders") / "G.safetensors"
    G = lively_tiny_generator(seed=1, gate_std=0.2)
    save_generator(G, path)
    dirs = pca_direction_set(G, file_sha256(path), num_samples=256, num_components=2)
    save_directions(dirs, directions_path(path), model_file=path)
    return path


def test_rows_are_sliders_and_columns_move_with_the_value(model, tmp_path, capsys):
    out = tmp_path / "s.png"
    argv = [str(model), str(out), "--sliders", "PCA0", "PCA1", "--seeds", "0", "1",
            "--values", "-3", "0", "3", "--resolution", "32"]
    assert slider_figure.main(argv) == 0
    assert torch.is_grad_enabled()  # the tool leaves the process as it found it
    img = np.asarray(Image.open(out)).astype(np.float32)
    assert img.shape == (2 * 32, 6 * 32, 3)
    cells = img.reshape(2, 32, 6, 32, 3).transpose(0, 2, 1, 3, 4)  # [slider, column, R, R, 3]
    # value 0 is the unedited head: the same picture in both rows; -3 and +3 differ from it
    assert np.array_equal(cells[0, 1], cells[1, 1]) and np.array_equal(cells[0, 4], cells[1, 4])
    assert np.abs(cells[0, 0] - cells[0, 1]).mean() > 0.5 and np.abs(cells[0, 2] - cells[0, 1]).mean() > 0.5
    assert "rows PCA0, PCA1" in capsys.readouterr().out


def test_refusals_leave_files_alone(model, tmp_path, capsys):
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"the user's picture")
    assert slider_figure.main([str(model), str(taken), "--sliders", "PCA0"]) == 2
    assert taken.read_bytes() == b"the user's picture" and "not overwritten" in capsys.readouterr().err
    assert slider_figure.main([str(model), str(tmp_path / "a.jpg"), "--sliders", "PCA0"]) == 2
    assert "name it .png" in capsys.readouterr().err
    assert slider_figure.main([str(model), str(tmp_path / "b.png"), "--sliders", "smile"]) == 2
    assert "not in the directions file: smile" in capsys.readouterr().err
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(model.read_bytes())
    assert slider_figure.main([str(bare), str(tmp_path / "c.png"), "--sliders", "PCA0"]) == 2
    assert "no directions file" in capsys.readouterr().err
    other = tmp_path / "other.safetensors"  # a directions file that belongs to another model
    save_generator(lively_tiny_generator(seed=2, gate_std=0.2), other)
    Path(directions_path(other)).write_bytes(Path(directions_path(model)).read_bytes())
    assert slider_figure.main([str(other), str(tmp_path / "d.png"), "--sliders", "PCA0"]) == 2
    assert "other.safetensors" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("a.jpg", "b.png", "c.png", "d.png"))
