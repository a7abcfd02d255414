"""Pretrained loss weights: missing files are named with their folder; present files are loaded; a missing file
is downloaded on first use (here from a local file:// address), hash-checked, never when offline."""

from __future__ import annotations

import pytest
import torch

from inversion.objective import LossNetworks, LossWeights, Objective
from inversion.framing import SYNTHETIC_HEADS
import hashlib

from inversion import pretrained
from inversion.pretrained import (
    FACENET_FILE, LPIPS_FILES, MissingWeightsError, WeightFile, find_weights, load_facenet, load_lpips,
)


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_missing_lpips_weights_name_the_file_and_folder(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        load_lpips("alex", weights_dir=tmp_path / "mine", offline=True)
    msg = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in msg and str(tmp_path / "mine") in msg
    assert "--random-loss-weights" in msg and "offline" in msg
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg


def test_missing_facenet_weights_name_the_file_and_folder(tmp_path):
    with pytest.raises(MissingWeightsError, match=FACENET_FILE) as err:
        Objective(LossWeights(id=0.1, mse=1.0, lpips=0.0), SYNTHETIC_HEADS, LossNetworks(offline=True))
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


def _published(tmp_path, payload: bytes, name: str = "net-00000000.pth") -> WeightFile:
    src = tmp_path / "server" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    return WeightFile(name, src.as_uri(), "hub/checkpoints", digest[:8], "The test loss")


def test_download_on_first_use_into_the_torch_cache(tmp_path, capsys):
    wf = _published(tmp_path, b"weights" * 1000)
    path = find_weights(wf, weights_dir=None, allow_random=False)
    assert path == tmp_path / "torch_home" / "hub" / "checkpoints" / wf.name
    assert path.read_bytes() == b"weights" * 1000
    assert "B" in capsys.readouterr().err  # tqdm's progress bar on stderr
    (tmp_path / "server" / wf.name).unlink()  # second use: the cached file, no download
    assert find_weights(wf, weights_dir=None, allow_random=False) == path


def test_download_refused_corrupt_or_offline_gives_a_clear_message(tmp_path):
    wf = _published(tmp_path, b"good")
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    with pytest.raises(MissingWeightsError, match="offline: nothing is downloaded"):
        find_weights(wf, weights_dir=None, allow_random=False, offline=True)
    assert not cache.exists() or not any(cache.iterdir())
    bad = WeightFile(wf.name, wf.url, wf.folder, "deadbeef", wf.what)
    with pytest.raises(MissingWeightsError, match="corrupt") as err:
        find_weights(bad, weights_dir=None, allow_random=False)
    assert wf.url in str(err.value) and not any(cache.iterdir())  # nothing half-written is left
    gone = WeightFile(wf.name, (tmp_path / "nowhere.pth").as_uri(), wf.folder, None, wf.what)
    with pytest.raises(MissingWeightsError, match="failed") as err:
        find_weights(gone, weights_dir=None, allow_random=False)
    assert "nowhere.pth" in str(err.value) and not any(cache.iterdir())


@pytest.mark.slow
def test_lpips_downloads_its_backbone_from_the_published_address(tmp_path, monkeypatch):
    from core.torchvision_compat import import_torchvision

    tv = import_torchvision()
    torch.manual_seed(1)
    alex = tv.models.alexnet()
    blob = tmp_path / "alex.pth"
    torch.save(alex.state_dict(), blob)
    wf = _published(tmp_path, blob.read_bytes(), LPIPS_FILES["alex"])
    monkeypatch.setitem(pretrained.LPIPS_WEIGHTS, "alex", wf)
    net = load_lpips("alex")
    assert net.source == str(tmp_path / "torch_home" / "hub" / "checkpoints" / LPIPS_FILES["alex"])
    assert torch.equal(dict(net.module.net.slice1.named_children())["0"].weight, alex.features[0].weight)


def test_a_corrupt_facenet_file_is_named(tmp_path):
    (tmp_path / FACENET_FILE).write_bytes(b"not a torch file")
    with pytest.raises(MissingWeightsError, match="not facenet-pytorch's VGGFace2"):
        load_facenet(weights_dir=tmp_path)
