"""core.model_files: our generator files round-trip bit-exactly, foreign and hostile files are refused."""

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
    path = tmp_path / "g.pkl"
    save_generator(G, path, metadata={"note": "test"})
    loaded = load_generator(path)
    assert loaded.source_format == "splathead" and not loaded.generator.training
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
        load_generator(tmp_path / "missing.pkl")
    with pytest.raises(IsADirectoryError):
        load_generator(tmp_path)
    truncated = tmp_path / "cut.pkl"
    save_generator(Generator(PRESETS["tiny"]), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        load_generator(truncated)


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path):
    from core.checkpoint import save_generator_state as save_state

    G = Generator(PRESETS["tiny"])
    state = G.state_dict()
    state.pop("xyz_const")
    path = tmp_path / "bad.pkl"
    save_state(path, G.config.to_dict(), state)
    with pytest.raises(CheckpointError, match=r"(?s)do not fit their config.*xyz_const"):
        load_generator(path)


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
