"""Loading GGHead checkpoints (core.gghead.checkpoint through core.model_files.load_generator) from fixtures
written in the exact upstream pickle format by core.gghead.format_writer: nothing is executed or imported, the
config stored in the file wins over defaults, absent attributes get upstream's defaults, hostile or foreign
files are refused by name, and the loaded generator matches the float64 reference."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import os
import pickle
import pickletools
import sys
import time

import numpy as np
import pytest
import torch

import gghead_reference as ref
from core.checkpoint import CheckpointError
from core.gghead.checkpoint import is_gghead_pickle, load_gghead_checkpoint
from core.gghead.records import upstream_to_ours
from core.gghead.config import PRESETS
from core.gghead.format_writer import OMIT, upstream_modules, upstream_spec, write_gghead_checkpoint
from core.gghead.generator import GGHeadGenerator
from core.legacy_cgsgan import is_official_pickle
from core.legacy_pickle import LegacyPickleError, UnsafeLegacyPickleError
from core.model_files import load_generator

TINY = PRESETS["tiny"]
UPSTREAM_PACKAGES = ("gghead", "eg3d", "elias", "gaussian_splatting", "dreifus", "torch_utils", "dnnlib")


class _ImportBlocker(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.attempts = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in UPSTREAM_PACKAGES:
            self.attempts.append(name)
            raise ImportError(f"test: importing {name} is forbidden")
        return None


@contextlib.contextmanager
def no_upstream_imports():
    assert not [n for n in sys.modules if n.split(".")[0] in UPSTREAM_PACKAGES]
    blocker = _ImportBlocker()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
    assert not blocker.attempts, f"tried to import {blocker.attempts}"
    assert not [n for n in sys.modules if n.split(".")[0] in UPSTREAM_PACKAGES]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("gghead")
    path = d / "checkpoint-001200.pkl"
    tensors = write_gghead_checkpoint(path, TINY, augment=True)
    return path, tensors


def _globals(path) -> set[str]:
    """The module.name globals a pickle references: STACK_GLOBAL of the two values pushed before it (strings,
    possibly fetched from the memo)."""
    pushed, memo, out = [], {}, set()
    for op, arg, _ in pickletools.genops(path.read_bytes()):
        if op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif op.name == "STACK_GLOBAL":
            out.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        else:
            pushed.append(arg if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") else None)
    return out


def test_fixture_has_the_upstream_format(tiny_file):
    path, _ = tiny_file
    g = _globals(path)
    for name in ("gghead.models.gghead_model.GGHeadModel", "gghead.models.stylegan2.GGHSynthesisBlock",
                 "eg3d.torch_utils.persistence._reconstruct_persistent_obj", "builtins.getattr",
                 "gghead.config.gaussian_attribute.GaussianAttribute", "gghead.models.gghead_model.GGHeadConfig",
                 "torch.nn.modules.conv.Conv2d", "gaussian_splatting.scene.gaussian_model.GaussianModel",
                 "gaussian_splatting.scene.gaussian_model.build_covariance_from_scaling_rotation",
                 "torch._C._VariableFunctionsClass", "torch._utils._rebuild_parameter",
                 "numpy.core.multiarray.scalar" if np.__version__ < "2" else "numpy._core.multiarray.scalar"):
        assert name in g, name
    assert is_gghead_pickle(path) and not is_official_pickle(path)
    top = path.read_bytes()
    assert b"_apply_opacity_activation" in top and b"module_src was executed" in top


def test_loads_through_the_user_entry_point_without_running_or_importing_anything(tiny_file):
    path, tensors = tiny_file
    with no_upstream_imports():
        loaded = load_generator(path)
    assert not (path.parent / "EXECUTED").exists()
    G = loaded.generator
    assert isinstance(G, GGHeadGenerator) and loaded.source_format == "gghead-official"
    assert any("1,200 kimg" in n for n in loaded.notes) and any("augment_pipe" in n for n in loaded.notes)
    state = G.state_dict()
    for name, t in tensors.items():
        assert torch.equal(state[upstream_to_ours(name)], t), name
    n_params = sum(t.numel() for n, (s, kind) in upstream_spec(TINY, G.config.num_gaussians).items()
                   if kind == "param" for t in [tensors[n]])
    assert sum(p.numel() for p in G.parameters()) == n_params
    assert G.config == dataclasses.replace(TINY, num_gaussians=G.config.num_gaussians)


def test_loaded_generator_matches_the_reference(tiny_file):
    path, T = tiny_file
    G, info = load_gghead_checkpoint(path)
    z = torch.randn(2, TINY.z_dim, generator=torch.Generator().manual_seed(5))
    label = G.front_camera().to_label()[None].expand(2, -1)
    want_ws = ref.mapping(T, z, label, TINY.num_ws, TINY.mapping_layers, psi=0.7)
    ws = G.map(z, 0.7).detach()
    torch.testing.assert_close(ws.double(), want_ws, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        gs = G.synthesis(ws).gaussians
    for b, want in enumerate(ref.forward(T, ws.double(), ref.RELEASED, TINY.plane_resolution)):
        np.testing.assert_allclose(gs.means[b].numpy(), want["positions"], atol=2e-5)
        np.testing.assert_allclose(gs.log_scales[b].numpy(), want["log_scales"], atol=2e-5)
        np.testing.assert_allclose(gs.quats[b].numpy(), want["rotations"], atol=2e-5)
        np.testing.assert_allclose(gs.sh[b].numpy(), want["sh"], atol=5e-5)
        np.testing.assert_allclose(gs.opacities()[b].numpy(), np.clip(want["opacities"], 1.2e-7, 1), atol=2e-5)


def test_config_stored_in_the_file_wins_and_absent_attributes_get_upstream_defaults(tmp_path):
    path = tmp_path / "checkpoint-000800.pkl"
    T = write_gghead_checkpoint(path, TINY, entries="G_ema",
                                config_overrides={"position_attenuation": 0.01, "max_scale": -2.5,
                                                  "rendering_config.c_scale": 2.0},
                                omit_config=("opacity_overshoot", "clamp_opacity"),
                                model_overrides={"_n_uv_channels": OMIT})
    G, info = load_gghead_checkpoint(path)
    c = G.config
    assert c.position_attenuation == 0.01 and c.max_scale == -2.5  # the file's, not our preset's
    assert c.c_scale == 2.0
    assert c.opacity_overshoot == 0.0 and c.clamp_opacity is False  # upstream's class defaults
    assert info.defaults_used == {"opacity_overshoot": 0.0, "clamp_opacity": False}
    assert "opacity_overshoot=0.0" in info.summary()
    s = dict(ref.RELEASED, position_attenuation=0.01, max_scale=-2.5, opacity_overshoot=0.0)
    ws = G.map(torch.randn(1, TINY.z_dim), 0.5).detach().double()
    with torch.no_grad():
        gs = G.synthesis(ws).gaussians
    want = ref.forward(T, ws, s, TINY.plane_resolution)[0]
    np.testing.assert_allclose(gs.means[0].numpy(), want["positions"], atol=2e-5)
    np.testing.assert_allclose(gs.log_scales[0].numpy(), want["log_scales"], atol=2e-5)
    np.testing.assert_allclose(torch.sigmoid(gs.opacity_logits[0]).numpy(), want["opacities"], atol=2e-5)


def test_older_nested_config_and_missing_attribute_names(tmp_path):
    path = tmp_path / "checkpoint-000200.pkl"
    write_gghead_checkpoint(path, TINY, entries="G_ema", omit_config=("gaussian_attribute_config",),
                            model_overrides={"_uv_attribute_names": OMIT, "_position_start_channel": OMIT})
    with pytest.raises(LegacyPickleError, match="_n_uv_channels = 22, but its attributes need 14 channels"):
        # without gaussian_attribute_config upstream's class defaults apply (quaternions, SH degree 0: 3 + 3 +
        # 4 + 3 + 1 = 14 channels), which cannot decode this 22-channel model: refused, naming the mismatch
        load_gghead_checkpoint(path)
    write_gghead_checkpoint(path, TINY, entries="G_ema", model_overrides={"_uv_attribute_names": OMIT})
    G, info = load_gghead_checkpoint(path)  # channel order from the stored config's uv_attributes instead
    assert G.config.uv_attributes == TINY.uv_attributes


def test_background_channels_are_dropped_with_a_note(tmp_path):
    path = tmp_path / "checkpoint-000300.pkl"
    c = dataclasses.replace(TINY, n_background_channels=3)
    write_gghead_checkpoint(path, c, entries="G_ema")
    G, info = load_gghead_checkpoint(path)
    assert G.config.n_background_channels == 3 and G.config.map_channels == 25
    assert any("background CNN" in w for w in info.warnings)
    assert G.synthesis(G.map(torch.randn(1, c.z_dim))).gaussians.num_gaussians == G.config.num_gaussians


@pytest.mark.parametrize("flag", ["disable_position_offsets", "no_exp_scale_activation"])
def test_settings_upstream_cannot_run_are_refused(tmp_path, flag):
    path = tmp_path / "checkpoint-000100.pkl"
    write_gghead_checkpoint(path, TINY, entries="G_ema", config_overrides={flag: True})
    with pytest.raises(LegacyPickleError, match=flag):
        load_gghead_checkpoint(path)


def test_missing_and_misshaped_tensors_are_named(tmp_path):
    path = tmp_path / "checkpoint-000100.pkl"
    T = write_gghead_checkpoint(path, TINY, entries="G_ema")
    T2 = dict(T)
    del T2["backbone.synthesis.b8.conv0.affine.bias"]
    T2["backbone.synthesis.b16.torgb.bias"] = torch.zeros(5)
    write_gghead_checkpoint(path, TINY, entries="G_ema", tensors=T2)
    with pytest.raises(LegacyPickleError) as e:
        load_gghead_checkpoint(path)
    assert "backbone.synthesis.b8.conv0.affine.bias" in str(e.value)
    assert "backbone.synthesis.b16.torgb.bias has shape [5]" in str(e.value)


def _dump_with(path, payload_fn):
    """Write a pickle whose G_ema is what ``payload_fn(ns)`` returns, using the upstream stand-in modules."""
    with upstream_modules(path.with_name("EXECUTED")) as ns:
        with open(path, "wb") as f:
            pickle.dump({"training_set_kwargs": {}, "G_ema": payload_fn(ns)}, f)


class _Hostile:
    def __reduce__(self):
        return (eval, ("__import__('pathlib').Path('PWNED').write_text('x')",))


class _BadGetattr:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (getattr, (self.target, "upper"))


def test_hostile_globals_are_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for make, name in ((lambda ns: _Hostile(), "builtins.eval"),
                       (lambda ns: _BadGetattr(ns.GaussianAttribute.POSITION), r"getattr\(EnumRecord")):
        path = tmp_path / "checkpoint-000001.pkl"
        _dump_with(path, lambda ns: [ns.GaussianAttribute.POSITION, make(ns)])
        with pytest.raises(UnsafeLegacyPickleError, match=name):
            load_gghead_checkpoint(path)
        with pytest.raises(CheckpointError):
            load_generator(path)
    assert not (tmp_path / "PWNED").exists()


def test_unknown_enum_member_and_foreign_generators_are_refused(tmp_path):
    path = tmp_path / "checkpoint-000001.pkl"
    with upstream_modules(tmp_path / "EXECUTED") as ns:
        blob = pickle.dumps({"G_ema": [ns.GaussianAttribute.POSITION]})
    path.write_bytes(blob.replace(b"POSITION", b"EVILNAME"))
    with pytest.raises(UnsafeLegacyPickleError, match="GaussianAttribute"):
        load_gghead_checkpoint(path)

    # an EG3D tri-plane model of the same fork: a persistent record of another class
    with upstream_modules(tmp_path / "EXECUTED") as ns:
        cls = type("TriPlaneGenerator", (ns.MappingNetwork,), {})
        src_reduce = ns.MappingNetwork.__reduce__

        def reduce(self):
            fn, (meta,) = src_reduce(self)
            meta["class_name"] = "TriPlaneGenerator"
            return fn, (meta,)

        cls.__reduce__ = reduce
        obj = cls()
        with open(path, "wb") as f:
            pickle.dump({"G_ema": obj}, f)
    assert is_gghead_pickle(path)
    with pytest.raises(LegacyPickleError, match="EG3D tri-plane generator"):
        load_generator(path)


@pytest.mark.slow
def test_real_512_layout_loads_and_runs(tmp_path):
    """The released FFHQ-512 layout (GGHEAD-1): full checkpoint (G, D, G_ema), loaded as a user would."""
    c = PRESETS["gghead512"]
    path = tmp_path / "checkpoint-023200.pkl"
    t0 = time.perf_counter()
    T = write_gghead_checkpoint(path, c)
    t1 = time.perf_counter()
    with no_upstream_imports():
        loaded = load_generator(path)
    t2 = time.perf_counter()
    assert not (tmp_path / "EXECUTED").exists(), "an embedded module source was executed"
    G = loaded.generator
    spec = upstream_spec(c, G.config.num_gaussians)
    n_params = sum(T[n].numel() for n, (_, kind) in spec.items() if kind == "param")
    assert n_params == sum(p.numel() for p in G.parameters()) == 28_789_939
    assert G.config.num_gaussians == 235_156 and G.config.num_ws == 14 and G.config.map_channels == 22
    state = G.state_dict()
    assert all(torch.equal(state[upstream_to_ours(n)], t) for n, t in T.items())
    with torch.no_grad():
        gs = G.synthesis(G.map(torch.randn(1, 512), 0.7)).gaussians
    assert gs.num_gaussians == 235_156 and gs.sh_degree == 1 and bool(gs.validate())
    print(f"512 layout: {path.stat().st_size / 1e6:.0f} MB written in {t1 - t0:.1f} s, "
          f"loaded in {t2 - t1:.1f} s")


def test_a_tuned_gghead_generator_saved_in_our_format_loads_back(tiny_file, tmp_path):
    from core.model_files import save_generator

    G, _ = load_gghead_checkpoint(tiny_file[0])
    with torch.no_grad():
        G.synthesis_network.blocks[1].conv0.bias.add_(0.5)  # as pivotal tuning would change it
    path = save_generator(G, tmp_path / "generator_tuned.safetensors")
    loaded = load_generator(path)
    assert loaded.source_format == "splathead-gghead" and loaded.generator.config == G.config
    ws = G.map(torch.randn(1, TINY.z_dim), 0.7)
    with torch.no_grad():
        assert loaded.generator.synthesis(ws).gaussians.equal(G.synthesis(ws).gaussians)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_the_format_sniffers_never_open_what_is_not_a_regular_file(tmp_path):
    """A FIFO would block a plain open(); both sniffers go through core.regular_file and answer False at once."""
    from core.legacy_cgsgan import is_official_pickle

    fifo = tmp_path / "checkpoint.pkl"
    os.mkfifo(fifo)
    assert not is_gghead_pickle(fifo) and not is_official_pickle(fifo)
    assert not is_gghead_pickle(tmp_path) and not is_gghead_pickle(tmp_path / "missing.pkl")
