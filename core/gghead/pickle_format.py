"""The globals a GGHead ``checkpoint-<kimg>.pkl`` references, mapped to inert stand-ins for
:func:`core.legacy_pickle.read_official_pickle` (its ``extra_globals``). Nothing from the file is executed.

A GGHead checkpoint is a plain ``pickle.dump`` of ``{training_set_kwargs, G, D, G_ema[, augment_pipe]}`` with
whole module objects (gghead @6043d2b, src/gghead/eg3d/train_loop.py). Besides what the StyleGAN3/CGS-GAN
whitelist of :mod:`core.legacy_pickle` already admits (torch tensor rebuilders, ``OrderedDict``, numpy scalars,
``torch.nn.functional.normalize``, ``torch._C._VariableFunctionsClass``), it references:

- EG3D's persistent layers through ``eg3d.torch_utils.persistence._reconstruct_persistent_obj`` (the EG3D fork
  is installed as package ``eg3d``) -> :class:`~core.legacy_pickle.PersistentRecord` (source kept as text);
- plain classes pickled by reference (NEWOBJ + BUILD of ``__dict__``): ``GGHeadModel``, ``GGHGenerator``,
  ``GGHSynthesisNetwork``, ``GGHSynthesisBlock``, ``GaussianDiscriminator``, ``torch.nn.Conv2d`` (the position
  convolution) and the 3DGS fork's ``GaussianModel`` -> :class:`ObjectRecord` subclasses;
- the elias ``Config`` dataclasses stored in the model (``GGHeadConfig`` and its nested configs) ->
  :class:`ObjectRecord` subclasses (their ``state`` is the dataclass ``__dict__``);
- the ``GaussianAttribute`` enum (an elias ``StringEnum``; a member pickles as a call of the class with its
  value, e.g. ``GaussianAttribute('POSITION')``) -> :class:`EnumRecord` for the five known members only;
- the ``GaussianModel``'s function attributes: ``torch.exp`` / ``torch.log`` (as ``getattr`` on
  ``torch._C._VariableFunctionsClass``), ``build_covariance_from_scaling_rotation``, ``inverse_sigmoid``,
  ``torch.nn.functional.normalize`` -> inert placeholders, and its ``opacity_activation``, a bound method of the
  model itself (``getattr(<the GGHeadModel>, '_apply_opacity_activation')``) -> an inert placeholder.

``builtins.getattr`` is admitted only in those two shapes. Anything else is refused by name.
Not verified against a real released file (none is available offline): the exact set of globals an
upstream pickle holds; an unexpected one is refused with its name, to be added here after checking it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from core.legacy_pickle import EasyDictRecord, InertGlobal, ModuleRecord, reconstruct_persistent_obj

FORMAT_NAME = "official GGHead"
GGHEAD_MODEL = "gghead.models.gghead_model.GGHeadModel"
ENUM_CLASS = "gghead.config.gaussian_attribute.GaussianAttribute"
ENUM_MEMBERS = ("POSITION", "SCALE", "ROTATION", "OPACITY", "COLOR")
BOUND_METHODS = frozenset({"_apply_opacity_activation", "_apply_scale_activation"})
_TORCH_FUNCTIONS = InertGlobal("torch._C._VariableFunctionsClass")
_TORCH_GETATTR = frozenset({"exp", "log", "sigmoid"})


class ObjectRecord(ModuleRecord):
    """Inert stand-in for an object pickled by reference (NEWOBJ, then BUILD with its ``__dict__``): keeps the
    state dict, does nothing else. ``class_name`` is the qualified name of the class it replaces."""


@dataclass(frozen=True)
class EnumRecord:
    """One ``GaussianAttribute`` member, e.g. ``EnumRecord('POSITION')``; ``name.lower()`` is our name."""

    name: str

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("an enum member takes no pickled state")


def _gaussian_attribute(value: Any) -> EnumRecord:
    """``GaussianAttribute(value)`` as upstream's pickles call it (value = the member name, any case)."""
    if type(value) is not str or value.upper() not in ENUM_MEMBERS:
        raise pickle.UnpicklingError(f"refused GaussianAttribute({value!r:.40}): not one of {ENUM_MEMBERS}")
    return EnumRecord(value.upper())


def _record_class(qualname: str) -> type[ObjectRecord]:
    return type(qualname.rsplit(".", 1)[-1], (ObjectRecord,), {"class_name": qualname, "__module__": __name__})


OBJECT_CLASSES = (
    GGHEAD_MODEL,
    "gghead.models.stylegan2.GGHGenerator",
    "gghead.models.stylegan2.GGHSynthesisNetwork",
    "gghead.models.stylegan2.GGHSynthesisBlock",
    "gghead.models.stylegan2.GGHSynthesisBlockNoUp",
    "gghead.models.gaussian_discriminator.GaussianDiscriminator",
    "torch.nn.modules.conv.Conv2d",
    "gaussian_splatting.scene.gaussian_model.GaussianModel",
)
CONFIG_CLASSES = (
    "gghead.models.gghead_model.GGHeadConfig",
    "gghead.models.gghead_model.MappingNetworkConfig",
    "gghead.models.gghead_model.SynthesisNetworkConfig",
    "gghead.models.gghead_model.RenderingConfig",
    "gghead.models.gghead_model.SuperResolutionConfig",
    "gghead.config.gaussian_attribute.GaussianAttributeConfig",
)
RECORD_CLASSES: dict[str, type[ObjectRecord]] = {q: _record_class(q) for q in OBJECT_CLASSES + CONFIG_CLASSES}


def _restricted_getattr(obj: Any, name: Any) -> InertGlobal:
    """``builtins.getattr`` as a GGHead checkpoint uses it: torch's exp/log/sigmoid, and the GaussianModel's
    activation bound to the GGHeadModel. Nothing else."""
    if obj == _TORCH_FUNCTIONS and name in _TORCH_GETATTR:
        return InertGlobal(f"torch.{name}")
    if isinstance(obj, RECORD_CLASSES[GGHEAD_MODEL]) and name in BOUND_METHODS:
        return InertGlobal(f"{GGHEAD_MODEL}.{name}")
    what = obj.name if isinstance(obj, InertGlobal) else getattr(obj, "class_name", type(obj).__name__)
    raise pickle.UnpicklingError(
        f"refused builtins.getattr({what}, {name!r:.60}): a GGHead checkpoint only uses getattr for torch's "
        f"{'/'.join(sorted(_TORCH_GETATTR))} and for GGHeadModel.{'/'.join(sorted(BOUND_METHODS))}")


def _inert(qualname: str) -> InertGlobal:
    return InertGlobal(qualname)


EXTRA_GLOBALS: dict[tuple[str, str], Any] = {
    ("eg3d.torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent_obj,
    ("eg3d.dnnlib.util", "EasyDict"): EasyDictRecord,
    **{tuple(q.rsplit(".", 1)): cls for q, cls in RECORD_CLASSES.items()},
    tuple(ENUM_CLASS.rsplit(".", 1)): _gaussian_attribute,
    ("gaussian_splatting.scene.gaussian_model", "build_covariance_from_scaling_rotation"):
        _inert("gaussian_splatting.scene.gaussian_model.build_covariance_from_scaling_rotation"),
    ("gaussian_splatting.utils.general_utils", "inverse_sigmoid"):
        _inert("gaussian_splatting.utils.general_utils.inverse_sigmoid"),
    ("builtins", "getattr"): _restricted_getattr,
}
