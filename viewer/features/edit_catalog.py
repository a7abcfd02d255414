"""Bridge between the Edit panel's plain data (``EditSpec``, ``EditOpInfo``) and ``core.edit_ops``.

Scene edits (crop, opacity threshold, recolour, splat scale, ...) act on the Gaussians; they are not the latent
sliders of ``core.editing``. Nothing here evaluates text: specs name a registered op and give typed values.
"""

from __future__ import annotations

from ui_state.render import EditSpec
from ui_state.info import EditField, EditOpInfo

_KINDS = {"float": "float", "bool": "bool", "vec3": "vec3", "rgb": "color", "int": "int"}


def edit_catalog() -> tuple[EditOpInfo, ...]:
    """Every registered op with its parameter fields, for the Edit panel."""
    from core.edit_ops import EDIT_OPS, op_infos, param_specs

    out = []
    for info in op_infos():
        fields = tuple(
            EditField(p.name, _KINDS.get(p.kind, p.kind), _plain(p.default), float(p.low if p.low is not None else 0),
                      float(p.high if p.high is not None else 1), p.help)
            for p in param_specs(EDIT_OPS[info.name]))
        out.append(EditOpInfo(info.name, f"{info.label}: {info.description}", fields))
    return tuple(out)


def edit_from_spec(spec: EditSpec):
    """The ``core.edit_ops.EditOp`` for ``spec`` (raises ``EditOpError`` naming the problem)."""
    from core.edit_ops import op_from_dict

    return op_from_dict({"op": spec.op, "params": {k: _plain(v) for k, v in spec.params}})


def _plain(value):
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return value


def spec_from_op(op) -> EditSpec:
    """The plain ``EditSpec`` of a ``core.edit_ops.EditOp`` (inverse of :func:`edit_from_spec`)."""
    from core.edit_ops import op_to_dict

    d = op_to_dict(op)
    return EditSpec(d["op"], tuple((k, _plain(v)) for k, v in d["params"].items()))
