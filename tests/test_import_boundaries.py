"""The one-way dependency rule (docs/architecture.md).

    widgets -> ui_state            viewer -> widgets, ui_state, inversion, core
    inversion -> core              training -> core              core -> torch, numpy, lazy gsplat
    ui_state -> nothing local      bench, tools -> anything      nothing imports bench or tools

Runtime checks import every module of a package in a fresh interpreter and look at ``sys.modules``; static
checks parse every file of every package, so an import hidden inside a function is caught too, and so is a
dynamic import with a literal name (``importlib.import_module("x")``, ``import_module("x")``,
``__import__("x")``). Both discover modules on disk, so they keep working as the packages fill up.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUI = ("imgui_bundle", "glfw", "OpenGL")

# Imports a fresh interpreter runs: walk a package, import every module (never __main__, which would run a
# program), and report which forbidden top-level modules appeared and which module first pulled each one in.
_PROBE = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    packages, forbidden, walk = json.loads(sys.argv[1])
    culprit, imported = {}, []
    def note(name):
        imported.append(name)
        for f in forbidden:
            if f not in culprit and (f in sys.modules):
                culprit[f] = name
    for pkg_name in packages:
        pkg = importlib.import_module(pkg_name)
        note(pkg_name)
        if not walk:
            continue
        for info in pkgutil.walk_packages(pkg.__path__, pkg_name + ".", onerror=lambda n: None):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            importlib.import_module(info.name)
            note(info.name)
    cuda = "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized()
    print(json.dumps({"culprit": culprit, "imported": imported, "cuda_initialized": cuda}))
""")


def _probe(packages: list[str], forbidden: tuple[str, ...], walk: bool = True, path: Path = ROOT) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path))
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([packages, forbidden, walk])], cwd=path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"importing {packages} failed:\n{r.stderr[-4000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def _explain(result: dict) -> str:
    return "; ".join(f"{mod!r} imported by {who}" for mod, who in result["culprit"].items())


def test_bare_import_core_is_light():
    r = _probe(["core"], GUI + ("gsplat", "torchvision"), walk=False)
    assert not r["culprit"], _explain(r)


@pytest.mark.parametrize("packages", [["core"], ["training", "inversion"]], ids=("core", "others"))
def test_model_code_never_imports_gui(packages):
    forbidden = GUI + (("gsplat",) if packages == ["core"] else ())
    r = _probe(packages, forbidden)
    assert not r["culprit"], _explain(r) + " (GUI code lives in viewer/ and widgets/; gsplat only lazily)"
    assert not r["cuda_initialized"], "importing model code initialised CUDA; pass devices explicitly"


def test_widgets_never_import_torch():
    r = _probe(["widgets"], ("torch", "gsplat"))
    assert not r["culprit"], _explain(r) + " (widgets edit UiState only; tensors belong in the render worker)"


def test_ui_state_imports_no_torch_and_no_gui():
    r = _probe(["ui_state"], ("torch", "gsplat", "core") + GUI)
    assert not r["culprit"], _explain(r) + " (ui_state is plain data below widgets and viewer)"


def test_probe_names_the_culprit(tmp_path):
    """Guard the probe itself: a nested module importing a forbidden one must be caught and named."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "leaf.py").write_text("import colorsys\n")
    (tmp_path / "pkg" / "__main__.py").write_text("raise SystemExit('__main__ must not be imported')\n")
    r = _probe(["pkg"], ("colorsys",), path=tmp_path)
    assert r["culprit"] == {"colorsys": "pkg.sub.leaf"}
    assert "pkg.__main__" not in r["imported"]


# ---- static rules ----------------------------------------------------------------------------------------

PACKAGES = ("core", "training", "inversion", "ui_state", "widgets", "viewer", "bench", "tools")
LOCAL = set(PACKAGES)
ALLOWED = {  # local packages each may import (besides itself)
    "core": set(),
    "training": {"core"},
    "inversion": {"core"},
    "ui_state": set(),
    "widgets": {"ui_state"},
    "viewer": {"widgets", "ui_state", "inversion", "core"},
    "bench": LOCAL,
    "tools": LOCAL,
}
THIRD_PARTY_BANNED = {
    "core": GUI,
    "training": GUI,
    "inversion": GUI,
    "ui_state": ("torch", "gsplat", "torchvision") + GUI,
    "widgets": ("torch", "gsplat", "torchvision"),
}
DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name_called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name_called in DYNAMIC_IMPORTERS:
                found.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            base = package[: len(package) - node.level + 1]
            if node.module:
                found.append((node.lineno, ".".join(base + [node.module])))
            else:
                found += [(node.lineno, ".".join(base + [a.name])) for a in node.names]
    return sorted(found)


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _violations(package: str) -> list[str]:
    """Every import in ``package`` that the rule forbids, as ``path:line imports module``."""
    out = []
    allowed = ALLOWED[package] | {package}
    banned = THIRD_PARTY_BANNED.get(package, ())
    for path in _files(package):
        rel = str(path.relative_to(ROOT))
        for line, mod in imported_modules(path):
            top = mod.split(".")[0]
            if (top in LOCAL and top not in allowed) or top in banned:
                out.append(f"{rel}:{line} imports {mod}")
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_static_dependency_rule(package):
    assert _files(package), f"{package}/ has no Python files: is the package list current?"
    assert _violations(package) == []


def test_every_package_is_checked():
    # hidden folders (.venv, .gpu, ...) are local set-up, not project code
    folders = {p.parent.name for p in ROOT.glob("*/*.py") if not p.parent.name.startswith(".")} - {"tests"}
    assert folders <= LOCAL, f"folders of Python files without a row in the rule: {sorted(folders - LOCAL)}"


def test_static_parser_resolves_relative_imports(tmp_path, monkeypatch):
    """Guard the checker itself: relative imports must resolve, or the static rules would pass vacuously."""
    pkg = tmp_path / "core" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    f = pkg / "mod.py"
    f.write_text("import os\nfrom ..x import y\nfrom . import z\nfrom ...viewer import app\n"
                 "def f():\n    import glfw\n"
                 "importlib.import_module('widgets.load')\n__import__('training')\nimport_module('tools.x')\n"
                 "importlib.import_module(name)\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_modules(f) == [(1, "os"), (2, "core.x"), (3, "core.sub.z"), (4, "viewer"), (6, "glfw"),
                                   (7, "widgets.load"), (8, "training"), (9, "tools.x")]
    assert imported_modules(pkg / "__init__.py") == [(1, "core.sub.a")]
    assert _violations("core") == ["core/sub/mod.py:4 imports viewer", "core/sub/mod.py:6 imports glfw",
                                   "core/sub/mod.py:7 imports widgets.load", "core/sub/mod.py:8 imports training",
                                   "core/sub/mod.py:9 imports tools.x"]
