"""The one-way dependency rule (README "Architecture"; docs: architecture-and-style.md section 6).

    widgets -> viewer.state        viewer -> widgets, inversion, core
    inversion -> core              training -> core              core -> torch, numpy, lazy gsplat

Runtime checks import every module of a package in a fresh interpreter and look at ``sys.modules``; static
checks parse every file, so an import hidden inside a function is caught too. Both discover modules on disk,
so they keep working as the packages fill up.
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

FORBIDDEN = {
    "core": ("viewer", "widgets", "training", "inversion") + GUI,
    "training": ("viewer", "widgets", "inversion") + GUI,
    "inversion": ("viewer", "widgets", "training") + GUI,
    "widgets": ("torch", "gsplat", "core", "training", "inversion", "torchvision"),
}


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
        if isinstance(node, ast.Import):
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


def _violations(package: str, banned: tuple[str, ...]) -> list[str]:
    out = []
    for path in _files(package):
        for line, mod in imported_modules(path):
            top = mod.split(".")[0]
            if top in banned:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_static_dependency_rule(package):
    assert _violations(package, FORBIDDEN[package]) == []


def test_widgets_use_only_viewer_state():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in _files("widgets")
           for line, mod in imported_modules(p) if mod.split(".")[0] == "viewer" and mod != "viewer.state"
           and not mod.startswith("viewer.state.")]
    assert bad == [], "widgets may import viewer.state only"


def test_viewer_state_imports_nothing_local():
    files = sorted((ROOT / "viewer" / "state").glob("*.py"))
    assert files, "viewer/state/ is missing"
    local = {"core", "viewer", "widgets", "training", "inversion"}
    bad = [f"{path.name}:{line}: {mod}" for path in files for line, mod in imported_modules(path)
           if mod.split(".")[0] in local and not (mod == "viewer.state" or mod.startswith("viewer.state."))]
    assert bad == [], "viewer/state/ must import nothing local but itself (it sits below widgets and viewer)"


def test_static_parser_resolves_relative_imports(tmp_path, monkeypatch):
    """Guard the checker itself: relative imports must resolve, or the static rules would pass vacuously."""
    pkg = tmp_path / "core" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    f = pkg / "mod.py"
    f.write_text("import os\nfrom ..x import y\nfrom . import z\nfrom ...viewer import app\n"
                 "def f():\n    import glfw\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_modules(f) == [(1, "os"), (2, "core.x"), (3, "core.sub.z"), (4, "viewer"), (6, "glfw")]
    assert imported_modules(pkg / "__init__.py") == [(1, "core.sub.a")]
    assert _violations("core", FORBIDDEN["core"]) == ["core/sub/mod.py:4 imports viewer",
                                                      "core/sub/mod.py:6 imports glfw"]
