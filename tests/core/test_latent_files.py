"""Load latent: a saved-latents library or a single latent file (an inversion's pivot.npz), both through the
checked readers (core.npz_file)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.camera import orbit_cameras
from core.editing import LatentEdit, LatentLibrary, load_latents, save_library
from core.editing.latent_file import LatentFileError
from inversion.outputs import read_pivot, write_pivot


def test_a_pivot_file_opens_as_one_latent_and_reads_back(tmp_path):
    ws = torch.randn(1, 6, 32)
    cams = orbit_cameras(torch.tensor([0.0, 0.3]), 0.1)
    path = write_pivot(tmp_path / "pivot.npz", ws, "w+", cams, ("a.jpg", "b.jpg"))
    lib = load_latents(path)
    assert [e.name for e in lib.entries] == ["pivot"] and lib.entries[0].edit.values == ()
    assert torch.equal(lib.entries[0].edit.base, ws[0])
    ws2, cams2, names = read_pivot(path)
    assert torch.equal(ws2, ws) and names == ["a.jpg", "b.jpg"]
    assert torch.allclose(cams2.to_label(), cams.to_label())


def test_a_library_opens_as_saved(tmp_path):
    base = torch.randn(6, 32)
    lib = LatentLibrary("0" * 64).save("one", LatentEdit(base, (("smile", 1.5),)))
    save_library(lib, tmp_path / "m.latents.npz")
    got = load_latents(tmp_path / "m.latents.npz")
    assert got.entries[0].name == "one" and got.entries[0].edit.values == (("smile", 1.5),)
    assert torch.equal(got.entries[0].edit.base, base)


def test_a_pivot_with_lying_labels_is_refused_before_reading(tmp_path):
    path = tmp_path / "pivot.npz"
    np.savez(path, ws=np.zeros((1, 6, 32), np.float32), labels=np.zeros((3, 7), np.float32),
             names=np.array(["a", "b", "c"]))
    with pytest.raises(LatentFileError, match=r"labels \[N, 25\]"):
        read_pivot(path)
    np.savez(path, ws=np.zeros((1, 6, 32), np.float32), labels=np.zeros((3, 25), np.float32), names=np.array(["a"]))
    with pytest.raises(LatentFileError, match="3 photo names"):
        read_pivot(path)
    with pytest.raises(FileNotFoundError):
        load_latents(tmp_path / "missing.npz")
