"""Latent editing: PCA, attribute, user-taught and 3D-measured sliders; saved latents.

Public API (the viewer's Latent panel calls these; none needs training code)::

    from core.editing import (LatentEdit, base_from_seed, find_directions, match_target, teach_direction, ...)
    dirs = find_directions("model.safetensors")           # model.directions.npz, checked against the model's SHA-256
    edit = LatentEdit(base_from_seed(G, seed=3, psi=0.7))
    edit = edit.with_value("PCA0", 1.5).with_value("has_glasses", 2.0)
    ws = edit.ws(dirs)                               # [num_ws, w_dim]; edit.reset_all().ws(dirs) == base exactly
    match = match_target(G, edit, dirs, "skin_color", (0.8, 0.6, 0.5))   # colour picker -> match.edit
    d = teach_direction(Marks("freckles").add(w1, True).add(w2, False), dirs); dirs = dirs.with_directions([d])

Modules: directions (Direction, DirectionSet, WStatistics), direction_file (the .npz beside the model),
latent_edit (sliders as offsets on a base), pca (GANSpace), boundary (InterFaceGAN fits, orthogonalisation,
yes/no teaching), measured_spec + measured (attributes read from the Gaussians, target matching),
saved_latents (named latents with thumbnails), fingerprint (model SHA-256, sidecar paths).
"""

from core.editing.boundary import (
    Boundary, Marks, fit_binary_boundary, fit_regression_direction, orthogonalize, teach_direction,
)
from core.editing.direction_file import (
    DirectionsFileError, DirectionsMismatchError, directions_path, find_directions, load_directions,
    save_directions,
)
from core.editing.directions import Direction, DirectionKind, DirectionSet, WStatistics
from core.editing.fingerprint import file_sha256
from core.editing.latent_edit import LatentEdit, apply_sliders, base_from_seed, interpolate
from core.editing.measured import (
    TargetMatch, color_features, fit_measured_directions, match_target, measure, measure_ws,
)
from core.editing.measured_spec import DEFAULT_MEASUREMENTS, Box, Measurement
from core.editing.pca import PcaFit, fit_pca, pca_direction_set, pca_directions, sample_ws, w_statistics
from core.editing.saved_latents import (
    LatentLibrary, LatentsFileError, SavedLatent, latents_path, load_latents, load_library, save_library,
)

__all__ = [
    "DEFAULT_MEASUREMENTS", "Boundary", "Box", "Direction", "DirectionKind", "DirectionSet", "DirectionsFileError",
    "DirectionsMismatchError", "LatentEdit", "LatentLibrary", "LatentsFileError", "Marks", "Measurement", "PcaFit",
    "SavedLatent", "TargetMatch", "WStatistics", "apply_sliders", "base_from_seed", "color_features",
    "directions_path", "file_sha256", "find_directions", "fit_binary_boundary", "fit_measured_directions",
    "fit_pca", "fit_regression_direction", "interpolate", "latents_path", "load_directions", "load_latents", "load_library",
    "match_target", "measure", "measure_ws", "orthogonalize", "pca_direction_set", "pca_directions", "sample_ws",
    "save_directions", "save_library", "teach_direction", "w_statistics",
]
