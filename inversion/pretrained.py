"""Pretrained loss networks: where their weight files live, loading them, and the message when one is missing.

Nothing is downloaded. The files are looked for in the folder the user names (``weights_dir``) and in the
standard torch caches:

==================  ==================================  ==========================================
network             file                                standard folder
==================  ==================================  ==========================================
LPIPS ``alex``      ``alexnet-owt-7be5be79.pth``        ``$TORCH_HOME/hub/checkpoints`` (torchvision)
LPIPS ``vgg``       ``vgg16-397923af.pth``              ``$TORCH_HOME/hub/checkpoints``
ID (facenet)        ``20180402-114759-vggface2.pt``     ``$TORCH_HOME/checkpoints`` (facenet-pytorch)
==================  ==================================  ==========================================

``$TORCH_HOME`` defaults to ``~/.cache/torch`` (``$XDG_CACHE_HOME/torch`` when that is set). LPIPS's small
linear heads ship inside the lpips wheel. With ``allow_random=True`` a missing file is replaced by random
weights (a *stand-in*: the loss runs but means nothing perceptually); only tests and benchmarks ask for that.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

LPIPS_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
LPIPS_URLS = {"alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
              "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth"}
FACENET_FILE = "20180402-114759-vggface2.pt"
FACENET_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"


class MissingWeightsError(FileNotFoundError):
    """A pretrained weight file is absent; ``str(err)`` names the file, the folders searched and the fix."""


@dataclass(frozen=True)
class LoadedNetwork:
    """A loss network and where its weights came from (a file path, or ``"random stand-in"``)."""

    module: nn.Module
    source: str


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch's own rule)."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch"


def find_weights(file_name: str, standard: Path, weights_dir: str | os.PathLike | None, what: str, url: str,
                 allow_random: bool) -> Path | None:
    """The path of ``file_name`` in ``weights_dir`` or ``standard``; None if absent and ``allow_random``;
    else :class:`MissingWeightsError`."""
    folders = ([Path(weights_dir).expanduser()] if weights_dir else []) + [standard]
    for folder in folders:
        if (folder / file_name).is_file():
            return folder / file_name
    if allow_random:
        return None
    searched = ", ".join(str(f) for f in folders)
    raise MissingWeightsError(
        f"{what} needs the weight file {file_name}, which is missing. Searched: {searched}. "
        f"Put {file_name} into {standard} (or into a folder you pass with --weights-dir); it is published at "
        f"{url}. To run anyway with an untrained stand-in (numbers without perceptual meaning), set the loss "
        f"weight to 0 or pass --random-loss-weights."
    )


def load_lpips(net: str = "alex", weights_dir: str | os.PathLike | None = None,
               allow_random: bool = False) -> LoadedNetwork:
    """LPIPS (lpips 0.1.4, v0.1 linear heads from its wheel) with the backbone from ``LPIPS_FILES[net]``."""
    if net not in LPIPS_FILES:
        raise ValueError(f"LPIPS backbone must be one of {sorted(LPIPS_FILES)}, got {net!r}")
    path = find_weights(LPIPS_FILES[net], torch_home() / "hub" / "checkpoints", weights_dir,
                        f"The LPIPS loss ({net})", LPIPS_URLS[net], allow_random)
    from core.torchvision_compat import ensure_torchvision

    tv = ensure_torchvision().module
    import lpips

    with warnings.catch_warnings():  # torchvision's notes about its deprecated `pretrained` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if path is not None:
        backbone = (tv.models.alexnet() if net == "alex" else tv.models.vgg16()).features
        backbone.load_state_dict({k.removeprefix("features."): v
                                  for k, v in torch.load(path, map_location="cpu", weights_only=True).items()
                                  if k.startswith("features.")})
        for slice_ in (getattr(model.net, f"slice{i}") for i in range(1, 6)):
            for name, layer in slice_.named_children():
                layer.load_state_dict(backbone[int(name)].state_dict())
    model.eval().requires_grad_(False)
    return LoadedNetwork(model, str(path) if path else "random stand-in")


def load_facenet(weights_dir: str | os.PathLike | None = None, allow_random: bool = False) -> LoadedNetwork:
    """facenet-pytorch's InceptionResnetV1 (VGGFace2), embeddings only (512-d, L2-normalised)."""
    path = find_weights(FACENET_FILE, torch_home() / "checkpoints", weights_dir, "The ID loss (facenet VGGFace2)",
                        FACENET_URL, allow_random)
    from core.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=False)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    model.eval().requires_grad_(False)
    return LoadedNetwork(model, str(path) if path else "random stand-in")
