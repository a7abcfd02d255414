"""Synthetic 3D heads made of Gaussians, and an EG3D/CGS-GAN-format multi-view dataset with ground truth.

Public API::

    from training.synthetic_heads import HeadAttributes, make_head, make_head_model, random_attributes
    gs = make_head(7)                                  # GaussianSet [N, ...], attributes sampled from seed 7
    gs = make_head(7, HeadAttributes(glasses="round")) # chosen attributes (seed drives only the noise)

    python -m training.synthetic_heads --out data/heads --num-identities 4000   # the dataset command

Modules: attributes (record + distributions), skull/face/nose/eyes/ears/hair/body/glasses (the parts),
surfaces (disc Gaussians on parametric surfaces), head (assembly), cameras (pose sampling), views (rendering),
config + dataset (the writer), __main__ (CLI).
"""

from training.synthetic_heads.attributes import DISTRIBUTIONS, HeadAttributes, sample_attributes
from training.synthetic_heads.head import SyntheticHead, make_head, make_head_model, random_attributes

__all__ = ["DISTRIBUTIONS", "HeadAttributes", "SyntheticHead", "make_head", "make_head_model", "random_attributes",
           "sample_attributes"]
