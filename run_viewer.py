"""SplatHead Studio viewer.  Usage: python run_viewer.py [MODEL.safetensors | MODEL.pkl | SCENE.ply] [--device cuda] [--resolution 512]

With no file it opens the embedded default model from assets/; `--help` lists every option.
"""

from imgui_bundle import imgui  # noqa: F401  (load imgui_bundle's libglfw before anything else can)
import tyro

from viewer.app import main
from viewer.config import ViewerConfig

if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(ViewerConfig)))
