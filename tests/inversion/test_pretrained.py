"""Pretrained loss weights: missing files are named with their folder; present files are loaded."""

from __future__ import annotations

import pytest
import torch

from inversion.objective import LossNetworks, LossWeights, Objective
from inversion.framing import SYNTHETIC_HEADS
from inversion.pretrained import FACENET_FILE, LPIPS_FILES, MissingWeightsError, load_facenet, load_lpips


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_missing_lpips_weights_name_the_file_and_folder(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        load_lpips("alex", weights_dir=tmp_path / "mine")
    msg = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in msg and str(tmp_path / "mine") in msg
    assert "--random-loss-weights" in msg


def test_missing_facenet_weights_name_the_file_and_folder(tmp_path):
    with pytest.raises(MissingWeightsError, match=FACENET_FILE) as err:
        Objective(LossWeights(id=0.1, mse=1.0, lpips=0.0), SYNTHETIC_HEADS, LossNetworks())
    assert str(tmp_path / "torch_home" / "checkpoints") in str(err.value)


def test_zero_weight_loads_nothing():
    obj = Objective(LossWeights(id=0.0, mse=1.0, lpips=0.0), SYNTHETIC_HEADS, LossNetworks())
    assert obj.sources == {} and obj.lpips is None and obj.facenet is None


@pytest.mark.slow
def test_weight_files_in_the_named_folder_are_loaded(tmp_path):
    from core.torchvision_compat import import_torchvision

    tv = import_torchvision()
    torch.manual_seed(0)
    alex = tv.models.alexnet()
    torch.save(alex.state_dict(), tmp_path / LPIPS_FILES["alex"])
    net = load_lpips("alex", weights_dir=tmp_path)
    assert net.source == str(tmp_path / LPIPS_FILES["alex"])
    assert torch.equal(dict(net.module.net.slice2.named_children())["3"].weight, alex.features[3].weight)
    from facenet_pytorch import InceptionResnetV1

    face = InceptionResnetV1(pretrained=None, classify=False)
    state = dict(face.state_dict())
    state["logits.weight"] = torch.zeros(8631, 512)  # the published file carries its classifier
    state["logits.bias"] = torch.zeros(8631)
    torch.save(state, tmp_path / FACENET_FILE)
    loaded = load_facenet(weights_dir=tmp_path)
    assert loaded.source.endswith(FACENET_FILE)
    assert torch.equal(loaded.module.conv2d_1a.conv.weight, face.conv2d_1a.conv.weight)
