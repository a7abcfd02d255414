"""The GGHead generator family ("GGHead: Fast and Generalizable 3D Gaussian Heads", Kirschstein et al. 2024):
a StyleGAN2 network predicts a UV feature map, sampled at a head template's UV grid into 3D Gaussians.

- :mod:`core.gghead.config`: :class:`GGHeadConfig`, presets, upstream defaults;
- :mod:`core.gghead.stylegan2`: the camera-conditioned mapping and the StyleGAN2 synthesis network;
- :mod:`core.gghead.decode`: UV sampling and the attribute activations -> :class:`core.gaussians.GaussianSet`;
- :mod:`core.gghead.template`: the UV template (grid, position map, template positions);
- :mod:`core.gghead.generator`: :class:`GGHeadGenerator`, the interface of :class:`core.generator.Generator`;
- :mod:`core.gghead.checkpoint` + :mod:`core.gghead.pickle_format`: loading ``checkpoint-<kimg>.pkl`` without
  executing anything from it (``core.model_files.load_generator`` dispatches here);
- :mod:`core.gghead.format_writer`: writes GGHead-format stand-in checkpoints for tests and benches.

See docs/gghead.md.
"""

from core.gghead.checkpoint import GGHeadLoadInfo, is_gghead_pickle, load_gghead_checkpoint
from core.gghead.config import PRESETS, GGHeadConfig
from core.gghead.generator import GGHeadGenerator

__all__ = ["PRESETS", "GGHeadConfig", "GGHeadGenerator", "GGHeadLoadInfo", "is_gghead_pickle",
           "load_gghead_checkpoint"]
