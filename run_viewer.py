"""SplatHead Studio viewer.  Usage: python run_viewer.py [FILE.ply] [--device cuda] [--width W] [--height H]

For now this opens a placeholder window (viewer/placeholder.py); `--help` lists every option.
"""

import tyro

from viewer.placeholder import PlaceholderConfig, main

if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(PlaceholderConfig)))
