"""Parameter and Gaussian counts of every generator preset, against the CGS-GAN fact sheet.

    python -m bench.parameters
"""

from __future__ import annotations

import torch

from bench.results import record
from core.generator import PRESETS, Generator, count_parameters

OFFICIAL_PARAMETERS_M = {"cgs256": 54.77, "cgs512": 61.61, "cgs1024": 70.55, "cgs2048": 79.48}


def main() -> None:
    for name, cfg in PRESETS.items():
        with torch.device("meta"):
            n = count_parameters(Generator(cfg))
        official = OFFICIAL_PARAMETERS_M.get(name)
        note = f"{cfg.num_gaussians:,} Gaussians" + (f"; fact sheet: {official} M" if official else "")
        record(f"generator_parameters_{name}", n / 1e6, "M parameters", "any", note=note)


if __name__ == "__main__":
    main()
