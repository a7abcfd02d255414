"""core.torchvision_compat: torchvision imports, and its nms behaves like greedy NMS, shim or not."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from core.torchvision_compat import ensure_torchvision, import_torchvision

ROOT = Path(__file__).resolve().parents[1]


def _run_python(code: str, *, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in [*pythonpath, ROOT]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float("nan")


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    """Textbook greedy NMS in plain Python; equal scores are visited in input order."""
    bx, sc = boxes.tolist(), scores.tolist()
    order = sorted(range(len(sc)), key=lambda i: -sc[i])  # sorted() is stable
    keep: list[int] = []
    for i in order:
        if all(not _iou(bx[i], bx[k]) > thr for k in keep):
            keep.append(i)
    return keep


def assert_valid_greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float, keep: list[int]) -> None:
    """Properties every correct NMS result has, whatever order it gives equal scores."""
    bx, sc = boxes.tolist(), scores.tolist()
    assert len(set(keep)) == len(keep)
    assert all(sc[a] >= sc[b] for a, b in zip(keep, keep[1:])), "kept boxes not by decreasing score"
    for a in keep:
        for b in keep:
            assert a == b or not _iou(bx[a], bx[b]) > thr, f"kept boxes {a} and {b} overlap more than {thr}"
    for j in set(range(len(sc))) - set(keep):
        assert any(sc[k] >= sc[j] and _iou(bx[k], bx[j]) > thr for k in keep), f"box {j} dropped for nothing"


def random_boxes(gen: torch.Generator, n: int, dtype: torch.dtype, ties: bool) -> tuple[torch.Tensor, ...]:
    """Integer-cornered boxes on a 32-grid: exact areas, so no IoU sits a rounding error from a threshold."""
    xy = torch.randint(0, 24, (n, 2), generator=gen)
    wh = torch.randint(1, 12, (n, 2), generator=gen)
    boxes = torch.cat([xy, xy + wh], dim=1).to(dtype)
    scores = torch.randint(0, 4, (n,), generator=gen) if ties else torch.randperm(n, generator=gen)
    return boxes, scores.to(dtype)


@pytest.fixture(scope="module")
def tv():
    return import_torchvision()


def test_idempotent(tv):
    assert import_torchvision() is tv
    assert ensure_torchvision() is ensure_torchvision()
    assert ensure_torchvision().module is sys.modules["torchvision"]


def test_nms_hand_made_boxes(tv):
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5], [21, 21, 29, 29.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95])
    # 4 suppresses 2 (IoU 0.64); 0 suppresses 1 (IoU 0.68); 3 vs 0 has IoU exactly 0.5: kept at 0.5, not 0.4.
    assert tv.ops.nms(boxes, scores, 0.5).tolist() == [4, 0, 3]
    assert tv.ops.nms(boxes, scores, 0.4).tolist() == [4, 0]
    assert tv.ops.nms(boxes, scores, 0.7).tolist() == [4, 0, 1, 2, 3]
    keep = tv.ops.nms(boxes, scores, 0.5)
    assert keep.dtype == torch.int64


def test_nms_empty(tv):
    keep = tv.ops.nms(torch.empty(0, 4), torch.empty(0), 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)
    no_classes = torch.empty(0, dtype=torch.int64)
    assert tv.ops.batched_nms(torch.empty(0, 4), torch.empty(0), no_classes, 0.5).numel() == 0


def test_nms_single_and_identical_boxes(tv):
    assert tv.ops.nms(torch.tensor([[1.0, 2, 3, 4]]), torch.tensor([0.3]), 0.5).tolist() == [0]
    same = torch.tensor([[0.0, 0, 4, 4]] * 3)
    assert tv.ops.nms(same, torch.tensor([0.1, 0.9, 0.5]), 0.5).tolist() == [1]
    assert tv.ops.nms(same, torch.tensor([0.1, 0.9, 0.5]), 1.0).tolist() == [1, 2, 0]  # IoU 1 is not > 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct-scores", "tied-scores"])
def test_nms_matches_brute_force(tv, dtype, ties):
    gen = torch.Generator().manual_seed(1234 + ties)
    for case in range(40):
        n = int(torch.randint(0, 40, (1,), generator=gen))
        boxes, scores = random_boxes(gen, n, dtype, ties)
        thr = [0.0, 0.25, 0.5, 0.75][case % 4]
        keep = tv.ops.nms(boxes, scores, thr).tolist()
        assert_valid_greedy_nms(boxes, scores, thr, keep)
        if not ties or ensure_torchvision().shim_used:
            # Equal scores: torchvision does not promise an order; the shim sorts stably, like the reference.
            assert keep == brute_force_nms(boxes, scores, thr), f"case {case}: n={n} thr={thr}"


def test_batched_nms_is_nms_per_class(tv):
    gen = torch.Generator().manual_seed(7)
    for _ in range(20):
        boxes, scores = random_boxes(gen, 30, torch.float32, ties=False)
        idxs = torch.randint(0, 3, (30,), generator=gen)
        keep = tv.ops.batched_nms(boxes, scores, idxs, 0.5).tolist()
        expected = []
        for c in range(3):
            members = torch.nonzero(idxs == c).flatten()
            expected += members[brute_force_nms(boxes[members], scores[members], 0.5)].tolist()
        assert sorted(keep) == sorted(expected)
        assert all(scores[a] >= scores[b] for a, b in zip(keep, keep[1:]))


def test_lpips_imports(tv):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed")
    import lpips

    assert hasattr(lpips, "LPIPS")


def test_facenet_imports(tv):
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch is not installed")
    from facenet_pytorch import MTCNN

    assert callable(MTCNN)


def test_shim_used_exactly_when_plain_import_fails():
    """Two fresh interpreters: one tries plain `import torchvision`, one uses the compat import."""
    plain = _run_python("""
        try:
            import torchvision
            print("OK")
        except RuntimeError as e:
            print("FAIL", e)
    """)
    assert plain.returncode == 0, plain.stderr
    plain_failed = plain.stdout.startswith("FAIL")
    if plain_failed:
        assert "torchvision::nms does not exist" in plain.stdout, plain.stdout

    compat = _run_python("""
        import json, sys, threading
        import torch
        from core.torchvision_compat import ensure_torchvision
        infos = []
        threads = [threading.Thread(target=lambda: infos.append(ensure_torchvision())) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        info = infos[0]
        boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11]])
        keep = info.module.ops.nms(boxes, torch.tensor([.9, .8]), .5)
        print(json.dumps({"shim_used": info.shim_used, "first_error": info.first_error,
                          "same": all(i is info for i in infos), "keep": keep.tolist(),
                          "partial_left": sorted(n for n in sys.modules if n.startswith("torchvision")
                                                 and sys.modules[n] is None)}))
    """)
    assert compat.returncode == 0, compat.stderr
    result = json.loads(compat.stdout.strip().splitlines()[-1])
    assert result["shim_used"] == plain_failed
    assert (result["first_error"] is not None) == plain_failed
    assert result["same"] and result["keep"] == [0] and result["partial_left"] == []


def test_clear_error_when_torchvision_missing():
    r = _run_python("""
        import sys
        sys.modules["torchvision"] = None  # makes `import torchvision` raise ModuleNotFoundError
        from core.torchvision_compat import import_torchvision
        try:
            import_torchvision()
        except ImportError as e:
            print(type(e).__name__, e)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ImportError torchvision is not installed"), r.stdout
    assert "make setup" in r.stdout


def test_unrelated_import_errors_are_not_shimmed(tmp_path):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('something else broke')\n")
    r = _run_python("""
        from core.torchvision_compat import import_torchvision
        try:
            import_torchvision()
        except RuntimeError as e:
            print("RuntimeError", e)
    """, pythonpath=[tmp_path])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "RuntimeError something else broke"


def test_no_shim_when_torchvision_imports_cleanly(tmp_path):
    """A torchvision that imports (stand-in package here) is returned as is, with nothing registered."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = 'stand-in'\n")
    r = _run_python("""
        import core.torchvision_compat as tc
        info = tc.ensure_torchvision()
        print(info.module.__version__, info.shim_used, info.first_error, tc._library is None)
    """, pythonpath=[tmp_path])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stand-in False None True"
