"""core.edit_ops and core.edit_history: each op's effect, validation, purity, undo/redo and JSON round trips."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.edit_history import EditHistory
from core.edit_ops import (
    EDIT_OPS,
    CropBox,
    EditOp,
    EditOpError,
    OpacityThreshold,
    Recolor,
    ScaleScene,
    ScaleSplats,
    Translate,
    default_op,
    op_from_dict,
    op_infos,
    op_to_dict,
)
from core.gaussians import GaussianSet, sh_dc_to_rgb


def scene(n: int = 200, k: int = 4, seed: int = 0) -> GaussianSet:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    return GaussianSet((torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5), r(n, 4), r(n, 3) - 3, r(n), r(n, k, 3))


def test_crop_box_keeps_exactly_the_inside_or_outside():
    gs = scene()
    op = CropBox((-0.2, -0.5, 0.0), (0.3, 0.5, 0.5))
    m = gs.means
    inside = (m[:, 0] >= -0.2) & (m[:, 0] <= 0.3) & (m[:, 2] >= 0.0)
    kept, dropped = op.apply(gs), CropBox(op.box_min, op.box_max, invert=True).apply(gs)
    assert 0 < int(inside.sum()) < 200
    assert kept.num_gaussians == int(inside.sum()) and dropped.num_gaussians == 200 - int(inside.sum())
    assert kept.equal(gs.select(inside)) and dropped.equal(gs.select(~inside))
    assert CropBox((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)).apply(gs).num_gaussians == 0  # empty result is fine


def test_opacity_threshold_uses_activated_opacity():
    gs = scene()
    out = OpacityThreshold(0.6).apply(gs)
    assert out.num_gaussians == int((torch.sigmoid(gs.opacity_logits) >= 0.6).sum())
    assert (out.opacities() >= 0.6).all()
    assert OpacityThreshold(0.0).apply(gs).num_gaussians == 200
    assert OpacityThreshold(1.0).apply(gs).num_gaussians == 0


def test_recolor_moves_colours_toward_the_target():
    gs = scene()
    target = torch.tensor([0.1, 0.9, 0.4], dtype=torch.float64)
    rgb = sh_dc_to_rgb(gs.sh[:, 0])
    out = Recolor((0.1, 0.9, 0.4), strength=0.25).apply(gs)
    torch.testing.assert_close(sh_dc_to_rgb(out.sh[:, 0]) - target, 0.75 * (rgb - target))
    torch.testing.assert_close(out.sh[:, 1:], 0.75 * gs.sh[:, 1:])  # view-dependent part fades too
    full = Recolor((0.1, 0.9, 0.4), strength=1.0).apply(gs)
    torch.testing.assert_close(full.base_rgb(), target.expand(200, 3))
    assert (full.sh[:, 1:] == 0).all()
    assert Recolor((0.1, 0.9, 0.4), strength=0.0).apply(gs).equal(gs)
    for f in ("means", "quats", "log_scales", "opacity_logits"):
        assert torch.equal(getattr(out, f), getattr(gs, f))


def test_recolor_only_in_box_leaves_the_outside_alone():
    gs = scene()
    op = Recolor((1.0, 1.0, 1.0), 1.0, only_in_box=True, box_min=(0.0, -1.0, -1.0), box_max=(1.0, 1.0, 1.0))
    out = op.apply(gs)
    inside = gs.means[:, 0] >= 0
    torch.testing.assert_close(out.base_rgb()[inside], torch.ones(int(inside.sum()), 3, dtype=torch.float64))
    assert torch.equal(out.sh[~inside], gs.sh[~inside])


def test_scale_translate_and_scale_scene():
    gs = scene()
    torch.testing.assert_close(ScaleSplats(0.5).apply(gs).scales(), 0.5 * gs.scales())
    assert torch.equal(ScaleSplats(0.5).apply(gs).means, gs.means)
    torch.testing.assert_close(Translate((0.1, -0.2, 0.3)).apply(gs).means,
                               gs.means + torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    c = torch.tensor([0.1, 0.0, -0.1], dtype=torch.float64)
    out = ScaleScene(2.0, (0.1, 0.0, -0.1)).apply(gs)
    torch.testing.assert_close(out.means, c + 2.0 * (gs.means - c))
    torch.testing.assert_close(out.scales(), 2.0 * gs.scales())


def test_non_count_ops_accept_batches_count_ops_refuse_them():
    batch = GaussianSet.stack([scene(10, 1, 1), scene(10, 1, 2)])
    assert ScaleSplats(2.0).apply(batch).batch_shape == (2,)
    assert Recolor().apply(batch).batch_shape == (2,)
    with pytest.raises(ValueError, match="needs one scene"):
        CropBox().apply(batch)


def test_apply_is_pure_and_ops_are_values():
    gs = scene()
    before = gs.clone()
    for name in EDIT_OPS:
        default_op(name).apply(gs)
    Recolor(strength=1.0, only_in_box=True).apply(gs)
    assert gs.equal(before)
    assert CropBox() == CropBox((-0.5, -0.5, -0.5), [0.5, 0.5, 0.5]) and hash(CropBox()) == hash(CropBox())
    assert CropBox() != CropBox(invert=True) and ScaleSplats(1.0) != ScaleScene(1.0)


@pytest.mark.parametrize("make, message", [
    (lambda: CropBox((0.5, 0.0, 0.0), (0.0, 1.0, 1.0)), "box_min .* must be <= box_max"),
    (lambda: CropBox((0.0, 0.0), (1.0, 1.0, 1.0)), "box_min must be 3 numbers"),
    (lambda: CropBox(invert=1), "invert must be a bool"),
    (lambda: OpacityThreshold(1.5), r"min_opacity must be in \[0, 1\]"),
    (lambda: OpacityThreshold(float("nan")), "must be finite"),
    (lambda: OpacityThreshold("0.5"), "must be a number"),
    (lambda: Recolor((1.0, 2.0, 0.0)), r"RGB in \[0, 1\]"),
    (lambda: Recolor(strength=-0.1), r"strength must be in \[0, 1\]"),
    (lambda: ScaleSplats(0.0), "factor must be > 0"),
    (lambda: ScaleScene(-1.0), "factor must be > 0"),
    (lambda: Translate((0.0, True, 0.0)), "must be a number"),
])
def test_validation_errors(make, message):
    with pytest.raises(EditOpError, match=message):
        make()


def test_registry_lists_every_op_with_specs():
    infos = op_infos()
    assert [i.name for i in infos] == list(EDIT_OPS) and len(infos) == 6
    for info in infos:
        assert info.description and info.label and info.params
        assert isinstance(default_op(info.name), EDIT_OPS[info.name])
    recolor = next(i for i in infos if i.name == "recolor")
    assert [(p.name, p.kind) for p in recolor.params][:2] == [("rgb", "rgb"), ("strength", "float")]
    assert recolor.params[1].low == 0.0 and recolor.params[1].high == 1.0


def test_op_json_round_trip_and_load_errors():
    for op in (CropBox((-0.1, -0.2, -0.3), (0.1, 0.2, 0.3), True), OpacityThreshold(0.3),
               Recolor((0.2, 0.4, 0.6), 0.7, True), ScaleSplats(1.5), Translate((1.0, 2.0, 3.0)), ScaleScene(0.5)):
        assert op_from_dict(json.loads(json.dumps(op_to_dict(op)))) == op
    assert op_from_dict({"op": "scale_splats"}) == ScaleSplats()  # missing params take defaults
    with pytest.raises(EditOpError, match="unknown edit op 'explode'; known ops: crop_box"):
        op_from_dict({"op": "explode", "params": {}})
    with pytest.raises(EditOpError, match=r"unknown parameter\(s\) \['factr'\]"):
        op_from_dict({"op": "scale_splats", "params": {"factr": 2.0}})
    with pytest.raises(EditOpError, match="must be > 0"):
        op_from_dict({"op": "scale_splats", "params": {"factor": -2}})
    with pytest.raises(EditOpError, match="must be a dict"):
        op_from_dict(["scale_splats"])


def test_history_push_undo_redo_amend_clear():
    gs = scene()
    a, b, c = OpacityThreshold(0.3), ScaleSplats(0.5), Recolor(strength=1.0)
    h = EditHistory().push(a).push(b)
    assert h.ops == (a, b) and h.can_undo and not h.can_redo
    u = h.undo()
    assert u.ops == (a,) and u.redo_stack == (b,) and u.redo() == h
    assert u.undo().ops == () and u.undo().redo_stack == (a, b)
    assert u.push(c).ops == (a, c) and not u.push(c).can_redo  # a new edit forgets the redo stack
    assert h.amend(ScaleSplats(0.25)).ops == (a, ScaleSplats(0.25))
    assert EditHistory().amend(a).ops == (a,) and h.clear() == EditHistory()
    with pytest.raises(IndexError, match="nothing to undo"):
        EditHistory().undo()
    with pytest.raises(IndexError, match="nothing to redo"):
        h.redo()
    before = gs.clone()
    out = h.apply(gs)
    assert out.equal(b.apply(a.apply(gs))) and gs.equal(before)
    assert EditHistory().apply(gs) is gs


def test_history_json_round_trip_and_errors():
    h = EditHistory().push(CropBox(invert=True)).push(Recolor((0.0, 1.0, 0.0))).push(ScaleScene(2.0)).undo()
    d = json.loads(json.dumps(h.to_dict()))
    assert EditHistory.from_dict(d) == h and len(d["ops"]) == 2 and len(d["redo"]) == 1
    bad = dict(d, ops=d["ops"] + [{"op": "nope"}])
    with pytest.raises(EditOpError, match=r"'ops'\[2\]: unknown edit op 'nope'"):
        EditHistory.from_dict(bad)
    with pytest.raises(EditOpError, match="not an edit history"):
        EditHistory.from_dict({"ops": []})
    with pytest.raises(EditOpError, match="version 2 is not supported"):
        EditHistory.from_dict(dict(d, version=2))
    with pytest.raises(TypeError):
        EditHistory(ops=[CropBox()])  # type: ignore[arg-type]


def test_no_exec_or_eval_in_edit_modules():
    import core.edit_history
    import core.edit_ops

    for mod in (core.edit_ops, core.edit_history):
        src = open(mod.__file__, encoding="utf-8").read()
        assert "exec(" not in src and "eval(" not in src
    assert all(issubclass(cls, EditOp) for cls in EDIT_OPS.values())
    assert math.isclose(ScaleSplats(2).factor, 2.0) and isinstance(ScaleSplats(2).factor, float)
