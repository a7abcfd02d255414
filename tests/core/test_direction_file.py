"""The directions file and the saved-latents file: round trips, model-hash refusal, corrupt files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from core.editing import (
    DEFAULT_MEASUREMENTS, Direction, DirectionSet, DirectionsFileError, DirectionsMismatchError, LatentEdit,
    LatentLibrary, LatentsFileError, directions_path, file_sha256, find_directions, fit_pca, latents_path,
    load_directions, load_library, pca_directions, save_directions, save_library, w_statistics,
)


def _model(tmp_path, content: bytes = b"model bytes") -> str:
    p = tmp_path / "model.pkl"
    p.write_bytes(content)
    return str(p)


def _set(sha: str, dim: int = 6) -> DirectionSet:
    ws = torch.randn(100, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    stats = w_statistics(ws)
    dirs = pca_directions(fit_pca(ws, 2)) + (
        Direction("has_glasses", "attribute", np.arange(dim) + 1.0, 0.8, note="logistic"),
        Direction("freckles", "user", -np.ones(dim), 1.3, slots=(0, 2)),
    )
    m = DEFAULT_MEASUREMENTS[2]  # head_width: one direction
    dirs += (Direction(m.name, "measured", np.eye(dim)[1], 0.5),)
    return DirectionSet(sha, 4, stats, dirs, (m,))


def test_round_trip(tmp_path):
    model = _model(tmp_path)
    d = _set(file_sha256(model))
    path = directions_path(model)
    assert path.endswith("model.directions.npz")
    save_directions(d, path, model_file=model)
    back = find_directions(model)
    assert back is not None and back.names == d.names and back.num_ws == 4
    for a, b in zip(d.directions, back.directions):
        assert (a.name, a.kind, a.scale, a.slots, a.note) == (b.name, b.kind, b.scale, b.slots, b.note)
        np.testing.assert_array_equal(a.vector, b.vector)
    np.testing.assert_array_equal(back.stats.cov, d.stats.cov)
    assert back.measurements == d.measurements
    assert back.stats.num_samples == 100


def test_missing_file_is_none_and_load_raises(tmp_path):
    model = _model(tmp_path)
    assert find_directions(model) is None
    with pytest.raises(FileNotFoundError):
        load_directions(tmp_path / "nope.directions.npz")


def test_directions_of_another_model_are_refused(tmp_path):
    model = _model(tmp_path)
    save_directions(_set(file_sha256(model)), directions_path(model))
    (tmp_path / "model.pkl").write_bytes(b"retrained model bytes")  # same name, different file
    with pytest.raises(DirectionsMismatchError, match="made for another model"):
        find_directions(model)
    with pytest.raises(DirectionsMismatchError, match="recompute"):
        load_directions(directions_path(model), model_sha256="0" * 64)
    load_directions(directions_path(model))  # without a model to check against it still reads


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_key", "foreign_header", "bad_shape"])
def test_corrupt_files_raise_a_clear_error(tmp_path, damage):
    model = _model(tmp_path)
    path = directions_path(model)
    save_directions(_set(file_sha256(model)), path)
    raw = open(path, "rb").read()
    if damage == "garbage":
        open(path, "wb").write(b"\x00not a zip at all" * 10)
    elif damage == "truncated":
        open(path, "wb").write(raw[: len(raw) // 2])
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "missing_key":
            del arrays["w_cov"]
        elif damage == "foreign_header":
            arrays["header"] = np.array('{"format": "something-else"}')
        else:
            arrays["vectors"] = arrays["vectors"][:, :3]
        np.savez(path, **arrays)
    with pytest.raises(DirectionsFileError, match=r"model\.directions\.npz"):
        find_directions(model)


def test_file_is_read_without_pickles(tmp_path):
    model = _model(tmp_path)
    path = directions_path(model)
    save_directions(_set(file_sha256(model)), path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["header.npy", "vectors.npy", "w_cov.npy", "w_mean.npy"]


def test_saved_latents_round_trip_and_refusal(tmp_path):
    model = _model(tmp_path)
    sha = file_sha256(model)
    g = torch.Generator().manual_seed(0)
    thumb = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3)
    lib = LatentLibrary(sha).save("smiling", LatentEdit(torch.randn(4, 6, generator=g)).with_value("PCA0", 1.5),
                                  thumb)
    lib = lib.save("plain", LatentEdit(torch.randn(4, 6, generator=g)))
    lib = lib.save("smiling", lib.get("smiling").edit.with_value("PCA1", -1.0), thumb)  # replace in place
    assert lib.names == ("smiling", "plain")
    path = latents_path(model)
    assert path.endswith("model.latents.npz")
    save_library(lib, path)
    back = load_library(path, model_sha256=sha)
    assert back.names == lib.names
    for a, b in zip(lib.entries, back.entries):
        assert torch.equal(a.edit.base, b.edit.base) and a.edit.values == b.edit.values
    np.testing.assert_array_equal(back.get("smiling").thumbnail, thumb)
    assert back.get("plain").thumbnail is None
    assert back.remove("plain").names == ("smiling",)
    assert back.rename("plain", "neutral").names == ("smiling", "neutral")
    with pytest.raises(LatentsFileError, match="another model"):
        load_library(path, model_sha256="0" * 64)
    open(path, "wb").write(b"junk")
    with pytest.raises(LatentsFileError, match="not a readable"):
        load_library(path)
