"""Evaluation metrics: FID / FID3D with the standard Inception features, and 3D-consistency metrics.

Public API::

    from training.metrics import load_inception, fid, fid3d, generator_sampler, generator_consistency
    extractor = load_inception()                 # local TorchScript file; MissingWeightsError says what to get
    sample = generator_sampler(G, dataset.labels(), dataset.resolution)
    value = fid(dataset, sample, extractor, num_gen=50000, cache_dir="~/.cache/splathead/metrics")
    result = generator_consistency(G, num_scenes=64)          # no pretrained network
    result.psnr, result.depth_spread

    python -m training.metrics --network G.pkl --data DATASET --metrics fid50k_full consistency

Modules: features (extractors, Inception loading, the test stand-in), fid (statistics, Frechet distance,
real/generated statistics, cache), sampling (generated images as the protocol samples them), consistency
(reprojection consistency, depth spread, ground-truth comparison on the synthetic data), __main__ (CLI).
"""

from training.metrics.consistency import (
    ConsistencyResult, GtResult, depth_moments, generator_consistency, gt_consistency, load_eval_split,
    reprojection_consistency, yaw_offset_cameras,
)
from training.metrics.features import (
    FeatureExtractor, MissingWeightsError, find_inception, load_inception, load_torchscript_features,
    stand_in_features,
)
from training.metrics.fid import FeatureStats, fake_stats, fid, fid3d, fid_from_stats, frechet_distance, real_stats
from training.metrics.sampling import generator_sampler

__all__ = [
    "ConsistencyResult", "FeatureExtractor", "FeatureStats", "GtResult", "MissingWeightsError", "depth_moments",
    "fake_stats", "fid", "fid3d", "fid_from_stats", "find_inception", "frechet_distance", "generator_consistency",
    "generator_sampler", "gt_consistency", "load_eval_split", "load_inception", "load_torchscript_features",
    "real_stats", "reprojection_consistency", "stand_in_features", "yaw_offset_cameras",
]
