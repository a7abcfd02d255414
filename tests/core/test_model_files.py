"""core.model_files: our generator files (.safetensors + manifest) round-trip bit-exactly, format-1 .pkl files
still load, foreign and hostile files are refused, and headers are checked against the config before any
tensor is read."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from core.checkpoint import CheckpointError, ForeignCheckpointError, UnsafeCheckpointError
from core.generator import PRESETS, Generator
from core.model_files import load_generator, save_generator


def test_round_trip_is_bit_exact_and_gives_the_same_heads(tmp_path):
    torch.manual_seed(3)
    G = Generator(PRESETS["tiny"]).eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    path = tmp_path / "g.safetensors"
    assert save_generator(G, path, metadata={"note": "test"}) == path
    loaded = load_generator(path)
    assert loaded.source_format == "splathead" and not loaded.generator.training
    assert loaded.metadata["note"] == "test" and "one file" in loaded.notes[0]
    a, b = G.state_dict(), loaded.generator.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k].view(torch.uint8), b[k].view(torch.uint8)), k
    z = torch.randn(2, G.config.z_dim)
    with torch.no_grad():
        assert G(z, truncation_psi=0.7).gaussians.equal(loaded.generator(z, truncation_psi=0.7).gaussians)
    assert loaded.generator.config == G.config


def test_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_generator(path)
    assert not marker.exists()


def test_other_files_get_clear_errors(tmp_path):
    ply = tmp_path / "head.ply"
    ply.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(CheckpointError, match="scene, not a generator"):
        load_generator(ply)
    zipped = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, zipped)
    with pytest.raises(ForeignCheckpointError):
        load_generator(zipped)
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.safetensors")
    with pytest.raises(IsADirectoryError):
        load_generator(tmp_path)
    truncated = tmp_path / "cut.safetensors"
    save_generator(Generator(PRESETS["tiny"]), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_generator(truncated)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator(tmp_path / "empty.safetensors")


def _write(path, config: dict, state: dict) -> None:
    from core.checkpoint import Snapshot
    from core.snapshots import save_snapshot

    save_snapshot(path, Snapshot(kind="generator", generator_config=config, modules={"G_ema": state}))


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Any attempt to read tensor data fails the test: the checks must come first."""
    from core.tensor_file_reader import TensorFile

    def read(*args, **kwargs):
        raise AssertionError("tensor data was read before the header was checked")

    monkeypatch.setattr(TensorFile, "read", read)


def test_weights_that_do_not_fit_their_config_are_refused_before_reading(tmp_path, no_tensor_reads):
    G = Generator(PRESETS["tiny"])
    state = G.state_dict()
    path = tmp_path / "bad.safetensors"
    _write(path, G.config.to_dict(), {k: v for k, v in state.items() if k != "xyz_const"})
    with pytest.raises(CheckpointError, match=r"does not fit its config: missing \['xyz_const'\]"):
        load_generator(path)
    _write(path, G.config.to_dict(), {**state, "xyz_const": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match=r"xyz_const has shape \[3, 3\] in the file"):
        load_generator(path)
    # A small file whose config claims a huge generator: compared on the meta device, nothing allocated.
    _write(path, {**G.config.to_dict(), "width": 4096, "level_channels": [4096, 32, 16]}, state)
    with pytest.raises(CheckpointError, match="does not fit its config|in the config|invalid generator config"):
        load_generator(path)
    _write(path, {**G.config.to_dict(), "resolution": 33}, state)
    with pytest.raises(CheckpointError, match="invalid generator config.*resolution"):
        load_generator(path)
    _write(path, {**G.config.to_dict(), "no_such_field": 1}, state)
    with pytest.raises(CheckpointError, match="no_such_field"):
        load_generator(path)


def test_format_1_pickles_and_sharded_snapshots_load(tmp_path):
    from core.checkpoint import Snapshot
    from core.snapshots import save_snapshot
    from test_snapshot_pickle import pickle_v1

    torch.manual_seed(1)
    G = Generator(PRESETS["tiny"]).eval()
    state = {k: v.half() if v.is_floating_point() else v for k, v in G.state_dict().items()}
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle_v1(Snapshot(kind="generator", generator_config=G.config.to_dict(),
                                       modules={"G_ema": state})))
    loaded = load_generator(old)
    assert loaded.source_format == "splathead" and "format 1" in loaded.notes[0]
    for k, v in loaded.generator.state_dict().items():
        assert torch.equal(v, state[k].float()), k
    # a sharded training snapshot: G_ema is read from the parts that hold it
    path = save_snapshot(tmp_path / "network-snapshot-000001.safetensors", Snapshot(
        kind="training", generator_config=G.config.to_dict(),
        modules={"G": G.state_dict(), "G_ema": state, "D": {"w": torch.zeros(1000)}}), max_part_bytes=64 << 10)
    assert path.name.endswith(".index.json")
    loaded = load_generator(path)
    assert "parts" in loaded.notes[0] and "G_ema" in loaded.notes[0]
    for k, v in loaded.generator.state_dict().items():
        assert torch.equal(v, state[k].float()), k


def test_official_pickles_go_through_the_legacy_loader(tmp_path):
    from test_legacy_cgsgan import SMALL, write_official_pickle  # the official-format fixture writer

    path = tmp_path / "network-snapshot-000000.pkl"
    write_official_pickle(path, SMALL)
    loaded = load_generator(path)
    assert loaded.source_format == "cgs-gan-official" and loaded.notes
    assert loaded.generator.config.official_pe_lookup
    with torch.no_grad():
        out = loaded.generator(torch.randn(1, loaded.generator.config.z_dim))
    out.gaussians.validate()
