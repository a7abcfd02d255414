"""Evaluation metrics: FID / FID3D with the standard Inception features, and 3D-consistency metrics.

Public API::

    from training.metrics import load_inception, fid, fid3d, generator_sampler, generator_consistency
    extractor = load_inception()                 # local TorchScript file; MissingWeightsError says what to get
    sample = generator_sampler(G, dataset.labels(), dataset.resolution)
    value = fid(dataset, sample, extractor, num_gen=50000, cache_dir="~/.cache/splathead/metrics")
    result = generator_consistency(G, num_scenes=64)          # no pretrained network
    result.psnr, result.depth_spread

    python -m training.metrics --network G.safetensors --data DATASET --metrics fid50k_full consistency
    python -m training.metrics --network G.safetensors --data SYNTHETIC --metrics gt_fit,consistency,floaters

Modules: features (extractors, Inception loading, the test stand-in), fid (statistics, Frechet distance,
real/generated statistics, cache), sampling (generated images as the protocol samples them), consistency
(reprojection consistency, depth spread, ground-truth comparison on the synthetic data), eval_split (the
synthetic data's held-out split), groundtruth (the multi-view latent fit of held-out synthetic heads), floaters
(opacity outside the head's silhouette), image_quality (PSNR, SSIM), __main__ (CLI).
"""

from training.metrics.consistency import (
    ConsistencyResult, GtResult, depth_moments, generator_consistency, gt_consistency, reprojection_consistency,
    yaw_offset_cameras,
)
from training.metrics.eval_split import load_eval_split
from training.metrics.features import (
    FeatureExtractor, MissingWeightsError, find_inception, load_inception, load_torchscript_features,
    stand_in_features,
)
from training.metrics.fid import FeatureStats, fake_stats, fid, fid3d, fid_from_stats, frechet_distance, real_stats
from training.metrics.floaters import FloaterResult, generator_floaters, head_silhouette, scene_floaters
from training.metrics.groundtruth import GtFitResult, GtFitSettings, gt_fit
from training.metrics.image_quality import psnr, ssim
from training.metrics.sampling import generator_sampler

__all__ = [
    "ConsistencyResult", "FeatureExtractor", "FeatureStats", "FloaterResult", "GtFitResult", "GtFitSettings",
    "GtResult", "MissingWeightsError", "depth_moments", "fake_stats", "fid", "fid3d", "fid_from_stats",
    "find_inception", "frechet_distance", "generator_consistency", "generator_floaters", "generator_sampler",
    "gt_consistency", "gt_fit", "head_silhouette", "load_eval_split", "load_inception",
    "load_torchscript_features", "psnr", "real_stats", "reprojection_consistency", "scene_floaters", "ssim",
    "stand_in_features", "yaw_offset_cameras",
]
