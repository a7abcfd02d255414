"""Snapshots (core/checkpoint.py): bit-exact round trips, atomic writes, and refusal of hostile or foreign input.

Hostile pickles are built so that loading them naively would have a visible side effect (a marker file);
every refusal test asserts the marker was not created.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import pickletools
import random
import re
import struct
import sys
import types
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import checkpoint as ckpt
from core.checkpoint import (
    FORMAT_MAGIC,
    FORMAT_VERSION,
    CheckpointError,
    CheckpointVersionError,
    CorruptCheckpointError,
    ForeignCheckpointError,
    Snapshot,
    TensorData,
    UnsafeCheckpointError,
    load_snapshot,
    read_generator_state,
    save_generator_state,
    save_snapshot,
    snapshot_from_bytes,
    snapshot_to_bytes,
)

# ---------------------------------------------------------------------------------------------- helpers


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes of a tensor, for bit-exact comparison (NaN payloads and -0.0 included)."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def assert_same_tensor(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
    assert torch.equal(bits(a), bits(b))


def assert_same_tree(a, b) -> None:
    """Deep equality: same types (tuple stays tuple), tensors bit-exact, NaN equal to NaN."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert_same_tensor(a, b)
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def all_dtype_state() -> dict[str, torch.Tensor]:
    f32 = torch.tensor([0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"), 1e-45, 3.4e38])
    nan_payload = torch.tensor([0x7FC00001, 0xFFC12345 - 2**32], dtype=torch.int32).view(torch.float32)
    return {
        "f32": f32,
        "f32_nan_payloads": nan_payload,
        "f64": torch.tensor([-0.0, float("nan"), 5e-324, 1.7976931348623157e308], dtype=torch.float64),
        "f16": torch.tensor([-0.0, float("nan"), 6e-8, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([-0.0, float("nan"), float("inf"), 1.0e38, 3.0], dtype=torch.bfloat16),
        "i64": torch.tensor([-(2**63), 2**63 - 1, 0], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-(2**15), 7], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.arange(256, dtype=torch.uint8).reshape(16, 16),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.25),
        "empty": torch.empty(0, 3),
        "transposed": torch.arange(12.0).reshape(3, 4).t(),  # non-contiguous
        "expanded": torch.tensor([1.0, 2.0]).expand(3, 2),  # stride 0
        "param": torch.nn.Parameter(torch.randn(2, 2, generator=torch.Generator().manual_seed(0))),
    }


def small_snapshot(**overrides) -> Snapshot:
    fields = dict(kind="training", generator_config={"resolution": 64, "channels": (32, 16), "name": "tiny"},
                  modules={"G": {"w": torch.ones(2, 3)}, "G_ema": {"w": torch.zeros(2, 3)}},
                  optimizers={}, training={"step": 7}, metadata={"note": "test"})
    fields.update(overrides)
    return Snapshot(**fields)


def round_trip(tmp_path, snapshot: Snapshot, **load_kwargs) -> Snapshot:
    path = tmp_path / "snap.pkl"
    save_snapshot(path, snapshot)
    return load_snapshot(path, **load_kwargs)


def write(tmp_path, data: bytes, name: str = "x.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


class Call:
    """Pickles as ``func(*args)``: the shape of every hostile payload."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def raw_tree(**overrides) -> dict:
    """The top-level dict of a valid snapshot, to tamper with (no tensors)."""
    tree = {"format": FORMAT_MAGIC, "format_version": FORMAT_VERSION, "kind": "training",
            "generator_config": {}, "modules": {}, "optimizers": {}, "training": {}, "metadata": {}}
    tree.update(overrides)
    return tree


# ---------------------------------------------------------------------------------------------- round trips


def test_state_dict_round_trip_is_bit_exact_for_every_dtype(tmp_path):
    state = all_dtype_state()
    loaded = round_trip(tmp_path, small_snapshot(modules={"G": state}))
    assert list(loaded.modules["G"]) == list(state)
    for name, t in state.items():
        got = loaded.modules["G"][name]
        assert_same_tensor(got, t.detach())
        assert type(got) is torch.Tensor and not got.requires_grad and got.is_contiguous()
    got = loaded.modules["G"]["f32"]
    got += 1  # the loaded tensor owns writable memory
    assert got[0] == 1.0


def test_adam_state_round_trips_and_training_continues_identically(tmp_path):
    def make():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        return model, torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.99))

    def step(model, opt):
        opt.zero_grad()
        model(torch.linspace(-1, 1, 6).reshape(2, 3)).square().sum().backward()
        opt.step()

    model, opt = make()
    for _ in range(2):
        step(model, opt)
    snap = small_snapshot(modules={"G": model.state_dict()}, optimizers={"G": opt.state_dict()})
    loaded = round_trip(tmp_path, snap)
    assert_same_tree(loaded.optimizers["G"], opt.state_dict())
    assert isinstance(loaded.optimizers["G"]["state"][0]["step"], torch.Tensor)  # int keys kept
    assert loaded.optimizers["G"]["param_groups"][0]["betas"] == (0.5, 0.99)  # tuples stay tuples

    model2, opt2 = make()
    with torch.no_grad():
        for p in model2.parameters():
            p.add_(1.0)  # make sure load_state_dict really overwrites them
    model2.load_state_dict(loaded.modules["G"])
    opt2.load_state_dict(loaded.optimizers["G"])
    step(model, opt)
    step(model2, opt2)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert_same_tensor(a, b)


def test_training_dict_with_rng_states_round_trips(tmp_path):
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    training = {
        "options": {"batch": 4, "lr": 2.5e-3, "betas": (0.0, 0.99), "gamma": float("nan"), "aug": None,
                    "label": b"\x00\xff", "flags": [True, False], "huge": 2**100, "neg_zero": -0.0},
        "counters": {"kimg": 12, "tick": 3, 5: "int keys"},
        "torch_rng": rng,
        "python_rng": random.Random(7).getstate(),
        "nested": [[[]], ((),), {}],
    }
    loaded = round_trip(tmp_path, small_snapshot(training=training, metadata={"unicode": "köpf \udc80 ✓"}))
    assert_same_tree(loaded.training, training)
    assert loaded.metadata == {"unicode": "köpf \udc80 ✓"}
    torch.set_rng_state(loaded.training["torch_rng"])
    a = torch.rand(5)
    torch.set_rng_state(rng)
    assert torch.equal(a, torch.rand(5))
    r = random.Random()
    r.setstate(loaded.training["python_rng"])
    assert r.random() == random.Random(7).random()


def test_generator_config_from_a_dataclass_rebuilds_the_dataclass(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        resolution: int = 128
        level_channels: tuple[int, ...] = (64, 32)
        psi: float | None = None
        layout: str = "per_block"

    cfg = Cfg(psi=0.7)
    path = tmp_path / "g.pkl"
    save_generator_state(path, cfg, {"w": torch.ones(3)}, metadata={"notes": "hello"})
    config, state = read_generator_state(path)
    assert Cfg(**config) == cfg and type(config["level_channels"]) is tuple
    assert_same_tensor(state["w"], torch.ones(3))
    snap = load_snapshot(path)
    assert snap.kind == "generator" and list(snap.modules) == ["G_ema"]
    assert snap.metadata["notes"] == "hello" and {"created", "code_version", "torch_version"} <= set(snap.metadata)


def test_read_generator_state_falls_back_to_G_and_names_missing_weights(tmp_path):
    path = tmp_path / "t.pkl"
    save_snapshot(path, small_snapshot(modules={"G": {"w": torch.full((2,), 5.0)}, "D": {"v": torch.ones(1)}}))
    _, state = read_generator_state(path)
    assert_same_tensor(state["w"], torch.full((2,), 5.0))
    save_snapshot(path, small_snapshot(modules={"D": {"v": torch.ones(1)}}))
    with pytest.raises(CorruptCheckpointError, match="no generator weights"):
        read_generator_state(path)


def test_saved_stream_references_no_global_but_our_record(tmp_path):
    data = snapshot_to_bytes(small_snapshot(modules={"G": all_dtype_state()}))
    ops = list(pickletools.genops(data))
    assert ops[0][0].name == "PROTO" and ops[0][1] == ckpt.PICKLE_PROTOCOL
    strings = {arg for op, arg, _ in ops if isinstance(arg, str)}
    assert not any(s.startswith("torch") for s in strings)
    assert sum(op.name == "STACK_GLOBAL" for op, _, _ in ops) == 1  # TensorData, then memo gets
    assert {"core.checkpoint", "TensorData"} <= strings


def test_device_is_not_recorded_and_tensors_land_on_map_location(tmp_path):
    # A record as a CUDA machine writes it: the format has no device field, so nothing can ask for CUDA.
    tree = raw_tree(kind="generator", modules={"G_ema": {"w": TensorData("float16", (2,), b"\x00\x3c\x00\xc0")}})
    path = write(tmp_path, pickle.dumps(tree, protocol=4))
    config, state = read_generator_state(path)
    assert state["w"].device.type == "cpu" and state["w"].tolist() == [1.0, -2.0]
    meta = load_snapshot(path, map_location="meta").modules["G_ema"]["w"]
    assert meta.device.type == "meta" and meta.dtype == torch.float16


@pytest.mark.gpu
def test_cuda_tensors_save_and_load_on_cpu(tmp_path):
    state = {k: v.cuda() for k, v in all_dtype_state().items()}
    loaded = round_trip(tmp_path, small_snapshot(modules={"G": state}))
    for k, v in state.items():
        assert_same_tensor(loaded.modules["G"][k], v.detach().cpu())


# ---------------------------------------------------------------------------------------------- atomic writes


def test_save_leaves_no_temp_files_and_replaces_atomically(tmp_path):
    path = tmp_path / "s.pkl"
    save_snapshot(path, small_snapshot(training={"step": 1}))
    save_snapshot(path, small_snapshot(training={"step": 2}))
    assert os.listdir(tmp_path) == ["s.pkl"]
    assert load_snapshot(path).training == {"step": 2}


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.pkl"
    save_snapshot(path, small_snapshot(training={"step": 1}))
    before = path.read_bytes()

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "fsync", fail)
    with pytest.raises(OSError, match="No space"):
        save_snapshot(path, small_snapshot(training={"step": 2}))
    monkeypatch.undo()
    with pytest.raises(TypeError):  # refused before the file is touched
        save_snapshot(path, small_snapshot(training={"fn": print}))
    assert os.listdir(tmp_path) == ["s.pkl"] and path.read_bytes() == before


# ---------------------------------------------------------------------------------------------- save refuses


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("training", {"fn": lambda: 0}, r"training\['fn'\]: a builtins.function"),
        ("training", {"a": [1, {"b": {1, 2}}]}, r"training\['a'\]\[1\]\['b'\]: a builtins.set"),
        ("training", {"x": complex(1, 2)}, "builtins.complex"),
        ("metadata", {"t": torch.ones(1)}, r"metadata\['t'\]: tensors are not allowed"),
        ("generator_config", {"t": torch.ones(1)}, "tensors are not allowed"),
        ("training", {(1, 2): 3}, "dict key .* is a tuple"),
        ("training", {True: 3}, "dict key True is a bool"),
        ("training", {"c": torch.ones(2, dtype=torch.complex64)}, r"training\['c'\]: tensor dtype torch.complex64"),
        ("training", {"s": torch.eye(2).to_sparse()}, "only dense tensors"),
        ("training", {"m": torch.empty(2, device="meta")}, "meta device"),
        ("training", {"o": object()}, "builtins.object"),
    ],
)
def test_save_refuses_unsupported_values_naming_the_key_path(tmp_path, field, value, message):
    with pytest.raises(TypeError, match=message):
        save_snapshot(tmp_path / "s.pkl", small_snapshot(**{field: value}))
    assert os.listdir(tmp_path) == []


def test_save_refuses_numpy_with_a_hint(tmp_path):
    np = pytest.importorskip("numpy")
    for value in (np.zeros(3), np.float64(1.0), np.int64(2)):
        with pytest.raises(TypeError, match=r"numpy\..*torch.from_numpy"):
            save_snapshot(tmp_path / "s.pkl", small_snapshot(training={"a": value}))


def test_save_refuses_cycles_and_bad_snapshots(tmp_path):
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="cycle"):
        save_snapshot(tmp_path / "s.pkl", small_snapshot(training={"c": cycle}))
    with pytest.raises(ValueError, match="kind"):
        small_snapshot(kind="weights")
    with pytest.raises(ValueError, match="needs modules 'G_ema' or 'G'"):
        small_snapshot(kind="generator", modules={"D": {}})
    with pytest.raises(TypeError, match=r"modules\['G'\]\['w'\]"):
        small_snapshot(modules={"G": {"w": [1.0]}})
    with pytest.raises(TypeError, match="expected a Snapshot"):
        save_snapshot(tmp_path / "s.pkl", {"G": {}})


def test_shared_objects_on_save_become_copies(tmp_path):
    shared = {"k": [1, 2]}
    t = torch.ones(2)
    loaded = round_trip(tmp_path, small_snapshot(training={"a": shared, "b": shared, "t1": t, "t2": t}))
    assert loaded.training["a"] == loaded.training["b"] and loaded.training["a"] is not loaded.training["b"]


# ---------------------------------------------------------------------------------------------- hostile pickles


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a hostile pickle ran code"


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_os_system_payload_is_refused_and_does_not_run(tmp_path, marker, protocol):
    payload = pickle.dumps(raw_tree(metadata={"x": Call(os.system, f"touch {marker}")}), protocol=protocol)
    path = write(tmp_path, payload)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_snapshot(path)
    msg = str(info.value)
    assert f"{os.system.__module__}.system" in msg and "not a splathead snapshot" in msg
    assert "malicious" in msg and str(path) in msg
    assert isinstance(info.value, pickle.UnpicklingError) and isinstance(info.value, ValueError)
    # The payload is real: only the restricted unpickler stops it (which the direct call also shows).
    with pytest.raises(UnsafeCheckpointError):
        ckpt._RestrictedUnpickler(io.BytesIO(payload), "<direct>").load()


@pytest.mark.parametrize("func", [eval, exec])
def test_builtins_eval_and_exec_are_refused(tmp_path, marker, func):
    code = f"open({str(marker)!r}, 'w').close()"
    path = write(tmp_path, pickle.dumps(Call(func, code), protocol=4))
    with pytest.raises(UnsafeCheckpointError, match=rf"builtins\.{func.__name__}"):
        load_snapshot(path)


def test_torch_pickles_are_refused(tmp_path):
    path = write(tmp_path, pickle.dumps({"w": torch.zeros(3)}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"torch\..*pickle of torch objects"):
        load_snapshot(path)
    for module, name in [("torch._utils", "_rebuild_tensor_v2"), ("torch.storage", "_load_from_bytes")]:
        raw = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"C\x00\x85R."  # GLOBAL, then call it with (b'',)
        with pytest.raises(UnsafeCheckpointError, match=rf"{module}\.{name}"):
            load_snapshot(write(tmp_path, raw))


def test_torch_save_files_are_recognised(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ForeignCheckpointError, match="torch.save"):
        load_snapshot(path)
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ForeignCheckpointError, match="legacy .*torch.save"):
        load_snapshot(path)


@pytest.mark.parametrize("name", ["load_snapshot", "save_snapshot", "_RestrictedUnpickler", "TensorData.__reduce__",
                                  "TensorData.from_tensor", "os"])
def test_other_names_from_our_own_module_are_refused(tmp_path, marker, name):
    raw = b"\x80\x02c" + f"core.checkpoint\n{name}\n".encode() + b"X" + struct.pack("<I", len(str(marker)))
    raw += str(marker).encode() + b"\x85R."
    with pytest.raises(UnsafeCheckpointError, match=re.escape(f"core.checkpoint.{name}")):
        load_snapshot(write(tmp_path, raw))
    # And through find_class alone (the gate that does not depend on the opcode scan):
    with pytest.raises(UnsafeCheckpointError, match=re.escape(f"core.checkpoint.{name}")):
        ckpt._RestrictedUnpickler(io.BytesIO(raw), "<direct>").load()


@pytest.fixture
def official_modules(monkeypatch, marker):
    """Stand-ins for CGS-GAN's torch_utils.persistence and dnnlib.util, importable during the test."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        marker.write_text("ran")  # what the real one does: exec the module source embedded in the pickle
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, mod in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                      ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return persistence, util


@pytest.mark.parametrize("protocol", [2, 4])
def test_official_cgsgan_pickle_is_recognised_and_nothing_runs(tmp_path, official_modules, protocol):
    persistence, util = official_modules
    net = Call(persistence._reconstruct_persistent_obj, {"type": "class", "version": 6,
                                                         "module_src": "import os; os.system('touch x')"})
    official = {"training_set_kwargs": util.EasyDict(resolution=512), "G": net, "D": net, "G_ema": net,
                "Gboth_opt": {}, "augment_pipe": None}
    path = write(tmp_path, pickle.dumps(official, protocol=protocol), "network-snapshot-000000.pkl")
    with pytest.raises(ForeignCheckpointError) as info:
        load_snapshot(path)
    assert "official CGS-GAN/StyleGAN pickle" in str(info.value) and "core.legacy_cgsgan" in str(info.value)
    assert isinstance(info.value, UnsafeCheckpointError)
    with pytest.raises(ForeignCheckpointError):  # find_class says the same without the scan
        ckpt._RestrictedUnpickler(io.BytesIO(path.read_bytes()), "<direct>").load()


def test_raw_persistence_global_is_recognised_even_when_truncated(tmp_path):
    raw = b"\x80\x02}q\x00X\x01\x00\x00\x00Gq\x01ctorch_utils.persistence\n_reconstruct_persistent_obj\nq\x02}"
    with pytest.raises(ForeignCheckpointError, match="core.legacy_cgsgan"):
        load_snapshot(write(tmp_path, raw + b"q\x03\x85q\x04Rq\x05s."))
    with pytest.raises(ForeignCheckpointError, match="core.legacy_cgsgan"):
        load_snapshot(write(tmp_path, raw))


def test_persistent_ids_are_refused(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "storage0" if isinstance(obj, bytes) else None

    buf = io.BytesIO()
    P(buf, protocol=4).dump(raw_tree(metadata={"b": b"data"}))
    with pytest.raises(UnsafeCheckpointError, match="persistent ids"):
        load_snapshot(write(tmp_path, buf.getvalue()))
    with pytest.raises(UnsafeCheckpointError, match="persistent ids"):
        ckpt._RestrictedUnpickler(io.BytesIO(buf.getvalue()), "<direct>").load()


# ---------------------------------------------------------------------------------------------- corrupt input


def test_truncated_files_are_refused_clearly(tmp_path):
    data = snapshot_to_bytes(small_snapshot(modules={"G": {"w": torch.randn(64, 64)}}))
    for cut in (1, 2, 3, 11, 50, len(data) // 3, len(data) // 2, len(data) - 20, len(data) - 1):
        with pytest.raises(CorruptCheckpointError, match="truncated or corrupt") as info:
            load_snapshot(write(tmp_path, data[:cut]))
        assert str(tmp_path / "x.pkl") in str(info.value)


def test_empty_random_zip_ply_and_trailing_data(tmp_path):
    with pytest.raises(CorruptCheckpointError, match="empty file"):
        load_snapshot(write(tmp_path, b""))
    rng = random.Random(0)
    for _ in range(20):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        with pytest.raises(CheckpointError):
            load_snapshot(write(tmp_path, data))
    with pytest.raises(CorruptCheckpointError, match="not a pickle"):
        load_snapshot(write(tmp_path, b"\x00\x01hello world"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}.")
    with pytest.raises(ForeignCheckpointError, match="zip archive"):
        load_snapshot(write(tmp_path, buf.getvalue()))
    with pytest.raises(CorruptCheckpointError, match="read_ply"):
        load_snapshot(write(tmp_path, b"ply\nformat binary_little_endian 1.0\n"))
    good = snapshot_to_bytes(small_snapshot())
    with pytest.raises(CorruptCheckpointError, match="trailing data"):
        load_snapshot(write(tmp_path, good + b"\x00junk"))
    with pytest.raises(IsADirectoryError):
        load_snapshot(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_snapshot(tmp_path / "missing.pkl")


def test_size_limit(tmp_path):
    path = write(tmp_path, snapshot_to_bytes(small_snapshot()))
    with pytest.raises(CorruptCheckpointError, match="over the limit"):
        load_snapshot(path, max_bytes=100)


@pytest.mark.parametrize(
    ("tree", "error", "message"),
    [
        (raw_tree(format_version=FORMAT_VERSION + 1), CheckpointVersionError, "written by a newer version"),
        (raw_tree(format_version=0), CorruptCheckpointError, "not one of ours"),
        (raw_tree(format_version="1"), CorruptCheckpointError, "not one of ours"),
        ({k: v for k, v in raw_tree().items() if k != "format_version"}, CorruptCheckpointError, "not one of ours"),
        ({k: v for k, v in raw_tree().items() if k != "format"}, CorruptCheckpointError, "not a splathead snapshot"),
        ([1, 2, 3], CorruptCheckpointError, "not a splathead snapshot: the pickle holds a list"),
        ({"G_ema": {}}, CorruptCheckpointError, "not a splathead snapshot"),
        (raw_tree(extra=1), CorruptCheckpointError, r"unexpected keys \['extra'\]"),
        (raw_tree(kind="weights"), CorruptCheckpointError, "kind is 'weights'"),
        (raw_tree(modules=[]), CorruptCheckpointError, "modules is a list"),
        (raw_tree(modules={"G": {"w": 1.0}}), CorruptCheckpointError, r"modules\['G'\] is not a state dict"),
        (raw_tree(optimizers={"G": []}), CorruptCheckpointError, r"optimizers\['G'\] is not a dict"),
        (raw_tree(metadata={"t": TensorData("uint8", (1,), b"\x00")}), CorruptCheckpointError, "only plain values"),
        (raw_tree(metadata={"s": {1, 2}}), CorruptCheckpointError, r"metadata\['s'\]: a set"),
        (raw_tree(training={"b": bytearray(b"x")}), CorruptCheckpointError, "bytearray"),
        (raw_tree(training={(1,): 2}), CorruptCheckpointError, "dict key of type tuple"),
        (raw_tree(kind="generator"), CorruptCheckpointError, "needs modules 'G_ema' or 'G'"),
    ],
)
def test_structures_that_are_not_snapshots_are_refused(tmp_path, tree, error, message):
    with pytest.raises(error, match=message):
        load_snapshot(write(tmp_path, pickle.dumps(tree, protocol=5)))


def test_shared_and_cyclic_containers_are_refused(tmp_path):
    shared = [1, 2]
    cycle: list = []
    cycle.append(cycle)
    # both refused by the tree check (the opcode guard, core.pickle_guard, accepts cycles: they are not nesting)
    for value, message in (({"a": shared, "b": shared}, "referenced twice"), (cycle, "referenced twice")):
        with pytest.raises(CorruptCheckpointError, match=message):
            load_snapshot(write(tmp_path, pickle.dumps(raw_tree(training={"v": value}), protocol=4)))
    deep: list = []
    for _ in range(ckpt.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(CorruptCheckpointError, match="nested deeper"):
        load_snapshot(write(tmp_path, pickle.dumps(raw_tree(training={"v": deep}), protocol=4)))


class Forged:
    """Pickles as ``TensorData(*args)`` without running TensorData's checks at write time."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (TensorData, self.args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("float32", (3,), b"\x00" * 8), "8 bytes for a float32 tensor of shape \\[3\\], which needs 12"),
        (("float32", (2**40, 2**40), b""), "which needs"),
        (("float32", (-1,), b""), "non-negative"),
        (("float32", [2], b"\x00" * 8), "tuple"),
        (("complex64", (1,), b"\x00" * 8), "unsupported dtype 'complex64'"),
        (("float32", (1,), "abcd"), "data must be bytes"),
        (("bool", (2,), b"\x01\x02"), "other than 0 and 1"),
        (("float32",), "missing"),
    ],
)
def test_bad_tensor_records_are_refused(tmp_path, args, message):
    tree = raw_tree(modules={"G": {"w": Forged(*args)}})
    with pytest.raises(CorruptCheckpointError, match=message):
        load_snapshot(write(tmp_path, pickle.dumps(tree, protocol=4)))


def test_records_cannot_be_changed_after_construction(tmp_path):
    rec = TensorData("uint8", (1,), b"\x07")
    with pytest.raises(AttributeError):
        rec.shape = (100,)
    # A BUILD opcode that would set state on a checked record:
    raw = pickle.dumps(raw_tree(training={"r": rec}), protocol=3)  # no frames, so bytes can be inserted
    assert raw.count(b"Rq") == 1  # REDUCE (TensorData(...)), then BINPUT
    tampered = raw.replace(b"Rq", b"R}(X\x05\x00\x00\x00shapeK\x02\x85ubq")  # BUILD with new state
    with pytest.raises(CorruptCheckpointError, match="no pickled state"):
        load_snapshot(write(tmp_path, tampered))


def test_memory_bombs_are_refused_before_allocating(tmp_path):
    bombs = [
        b"\x80\x04N" + b"r" + struct.pack("<I", 2**31 - 1) + b".",  # LONG_BINPUT at a huge memo index
        b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"xx.",  # BINBYTES8 claiming a terabyte
        b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"xx.",  # BINUNICODE8 likewise
        b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N.",  # FRAME longer than the file
    ]
    for raw in bombs:
        with pytest.raises(CorruptCheckpointError, match="truncated or corrupt"):
            load_snapshot(write(tmp_path, raw))


# ---------------------------------------------------------------------------------------------- fuzzing

_VALID = snapshot_to_bytes(small_snapshot(
    modules={"G": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([True, False])}},
    training={"step": 3, "rng": torch.arange(8, dtype=torch.uint8), "opts": {"lr": 0.1, "betas": (0.9, 0.99)}}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(_VALID)))
def test_mutated_snapshots_load_or_raise_checkpoint_errors(edits, cut):
    data = bytearray(_VALID)
    for pos, value in edits:
        data[pos] = value
    try:
        snap = snapshot_from_bytes(bytes(data[:cut] if cut else data))
    except CheckpointError:
        return
    assert isinstance(snap, Snapshot)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_checkpoint_errors(data):
    with pytest.raises(CheckpointError):
        snapshot_from_bytes(b"\x80\x04" + data)
