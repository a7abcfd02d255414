"""core/snapshots.py: a Snapshot (modules, optimizer states, training dict with RNG states) survives the
safetensors + manifest layout exactly, in one file or in parts, and manifests that do not match their tensors
are refused."""

from __future__ import annotations

import json
import os
import random

import pytest
import torch

from core.checkpoint import CheckpointVersionError, CorruptCheckpointError, Snapshot
from core.snapshots import encode_snapshot, load_snapshot, open_snapshot, save_snapshot
from core.tensor_files import MANIFEST_KEY, write_tensor_file

from test_snapshot_pickle import assert_same_tree, pickle_v1


def adam_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 40), torch.nn.Tanh(), torch.nn.Linear(40, 200))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.99))


def adam_step(model, opt) -> None:
    opt.zero_grad()
    model(torch.linspace(-1, 1, 6).reshape(2, 3)).square().sum().backward()
    opt.step()


def training_dict() -> dict:
    torch.manual_seed(123)
    return {
        "options": {"batch": 4, "lr": 2.5e-3, "betas": (0.0, 0.99), "gamma": float("nan"), "inf": float("-inf"),
                    "aug": None, "flags": [True, False], "huge": 2**100, "neg_zero": -0.0, "$odd": "key"},
        "counters": {"kimg": 12, 5: "int keys"},
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.Random(7).getstate(),
        "nested": [[[]], ((),), {}],
    }


@pytest.mark.parametrize("max_part_bytes", [None, 16 << 10], ids=["one-file", "sharded"])
def test_snapshot_round_trips_exactly_and_adam_continues_identically(tmp_path, max_part_bytes):
    model, opt = adam_model()
    for _ in range(2):
        adam_step(model, opt)
    snap = Snapshot(kind="training", generator_config={"resolution": 64, "level_channels": [32, 16]},
                    modules={"G": model.state_dict(), "G_ema": {"w": torch.zeros(2, 3)}},
                    optimizers={"G": opt.state_dict()}, training=training_dict(),
                    metadata={"unicode": "köpf ✓", "kimg": 1.5})
    path = save_snapshot(tmp_path / "snap.safetensors", snap, max_part_bytes=max_part_bytes)
    if max_part_bytes:
        assert path.name.endswith(".index.json") and len(os.listdir(tmp_path)) > 2
    loaded = load_snapshot(path)
    assert loaded.kind == "training" and loaded.metadata == snap.metadata
    assert loaded.generator_config == {"resolution": 64, "level_channels": [32, 16]}
    for name, sd in snap.modules.items():  # state dicts: same keys and bits (order and dict type are free)
        assert_same_tree(dict(sorted(loaded.modules[name].items())), dict(sorted(sd.items())))
    assert_same_tree(loaded.optimizers["G"], opt.state_dict())
    assert_same_tree(loaded.training, snap.training)
    r = random.Random()
    r.setstate(loaded.training["python_rng"])
    assert r.random() == random.Random(7).random()
    model2, opt2 = adam_model()
    model2.load_state_dict(loaded.modules["G"])
    opt2.load_state_dict(loaded.optimizers["G"])
    adam_step(model, opt)
    adam_step(model2, opt2)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_headers_can_be_checked_before_anything_is_read(tmp_path):
    model, opt = adam_model()
    adam_step(model, opt)
    path = save_snapshot(tmp_path / "s.safetensors", Snapshot(
        kind="training", generator_config={}, modules={"G": model.state_dict()}, optimizers={"G": opt.state_dict()}))
    sf = open_snapshot(path)
    assert sf.modules == ("G",) and sf.module_table("G")["2.weight"].shape == (200, 40)
    peek = sf.peek("optimizers")
    assert peek["G"]["state"][2]["exp_avg_sq"].shape == (200, 40)  # TensorInfo, nothing read
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    sf.check_module("G", expected)
    with pytest.raises(CorruptCheckpointError, match=r"G/2.weight has shape \[200, 40\] in the file, \[1, 1\]"):
        sf.check_module("G", {**expected, "2.weight": ((1, 1), torch.float32)})
    with pytest.raises(CorruptCheckpointError, match="missing .*extra"):
        sf.check_module("G", {**expected, "extra": ((1,), torch.float32)})


def test_values_that_cannot_be_stored_are_refused_before_writing(tmp_path):
    def snap(training):
        return Snapshot(kind="training", generator_config={}, modules={}, training=training)

    for training, message in [({"fn": print}, "training/fn: a builtins"), ({"s": {1, 2}}, "builtins.set"),
                              ({"b": b"x"}, "builtins.bytes"), ({(1, 2): 3}, "dict key"),
                              ({"c": torch.ones(2, dtype=torch.complex64)}, "complex64")]:
        with pytest.raises((TypeError, ValueError), match=message):
            save_snapshot(tmp_path / "s.safetensors", snap(training))
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="cycle"):
        save_snapshot(tmp_path / "s.safetensors", snap({"c": cycle}))
    with pytest.raises(ValueError, match="non-finite"):
        save_snapshot(tmp_path / "s.safetensors", Snapshot(kind="training", generator_config={"x": float("nan")},
                                                           modules={}))
    with pytest.raises(ValueError, match="reserved"):
        save_snapshot(tmp_path / "s.safetensors", Snapshot(kind="training", generator_config={},
                                                           modules={"training": {}}))
    assert os.listdir(tmp_path) == []


def _manifest_file(tmp_path, tensors: dict, manifest: dict):
    return write_tensor_file(tmp_path / "m.safetensors", tensors, manifest)


BASE = {"format": "splathead", "format_version": 2, "kind": "training", "generator_config": {}, "modules": ["G"],
        "optimizers": {}, "training": {}, "metadata": {}}


@pytest.mark.parametrize(("tensors", "changes", "error", "message"), [
    ({}, {"format_version": 3}, CheckpointVersionError, "newer version"),
    ({}, {"format": "other"}, CorruptCheckpointError, "not a 'splathead' manifest"),
    ({}, {"kind": "weights"}, CorruptCheckpointError, "kind is 'weights'"),
    ({}, {"extra": 1}, CorruptCheckpointError, "unexpected"),
    ({}, {"kind": "generator", "modules": ["D"]}, CorruptCheckpointError, "needs module G_ema or G"),
    ({"X/w": torch.ones(1)}, {}, CorruptCheckpointError, "outside the manifest's modules"),
    ({"training/t": torch.ones(1)}, {}, CorruptCheckpointError, "one to one"),
    ({}, {"training": {"t": {"$tensor": "training/t"}}}, CorruptCheckpointError, "one to one"),
    ({}, {"training": {"t": {"$eval": "x"}}}, CorruptCheckpointError, "unknown or malformed"),
    ({}, {"modules": ["G", "G"]}, CorruptCheckpointError, "distinct"),
])
def test_manifests_that_do_not_match_their_tensors_are_refused(tmp_path, tensors, changes, error, message):
    path = _manifest_file(tmp_path, tensors, {**BASE, **changes})
    with pytest.raises(error, match=message):
        open_snapshot(path)


def test_encoding_is_plain_json_with_typed_escapes():
    model, opt = adam_model()
    adam_step(model, opt)
    tensors, manifest = encode_snapshot(Snapshot(kind="training", generator_config={"t": (1, 2)}, modules={},
                                                 optimizers={"G": opt.state_dict()}, training={"x": float("inf")}))
    text = json.dumps(manifest, allow_nan=False)  # strict JSON: no NaN/Infinity literals
    assert manifest["generator_config"] == {"t": [1, 2]} and manifest["training"] == {"x": {"$float": "inf"}}
    assert "optimizers/G/state/0/exp_avg_sq" in tensors and '"$dict"' in text and '"$tuple"' in text


def test_legacy_pickle_snapshots_still_load(tmp_path):
    snap = Snapshot(kind="training", generator_config={"a": 1}, modules={"G": {"w": torch.arange(4.0)}},
                    training={"step": (1, 2)})
    (tmp_path / "old.pkl").write_bytes(pickle_v1(snap))
    loaded = load_snapshot(tmp_path / "old.pkl")
    assert_same_tree(loaded.modules, snap.modules)
    assert loaded.training == {"step": (1, 2)}


def test_a_file_with_a_foreign_manifest_key_is_not_ours(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "x.safetensors"), metadata={MANIFEST_KEY: "[1, 2]"})
    with pytest.raises(CorruptCheckpointError, match="not a 'splathead' manifest"):
        open_snapshot(tmp_path / "x.safetensors")
