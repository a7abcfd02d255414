"""The bad-input suite (issue 19): hostile and broken files must give a clear error of the documented type,
never crash the interpreter, hang, or allocate gigabytes.

One child process per family (tests/security/cases_*.py) runs its cases in turn against the real
loaders (tests/security/hostile_child.py: imports first, then an address-space limit, a peak-RSS reset and a
watchdog per case). Asserted per case:

- the outcome: the documented exception (by class, message naming the file and saying why), or for a
  control / a batch API the expected return value;
- no crash: the child exits 0 having reported every case (a segfault names the case that caused it);
- bounded time: under :data:`MAX_SECONDS` (a FIFO that blocks is cut by the child's watchdog);
- bounded memory: the process's peak RSS during the case under :data:`MAX_RSS_MB` (imports included, so
  the file itself may cost only the difference; the baseline is reported), and no ``MemoryError`` under the
  address-space limit.

``HOSTILE_REPORT=path.json`` writes the per-case results (docs/security.md's table comes from it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cases_model_files import generator_config, official_format, pickle_structure  # noqa: E402
from cases_user_files import datasets, not_regular, photos, ply_files, side_cars  # noqa: E402
from hostile_case import Case, Raises  # noqa: E402

FAMILIES = {  # name (as in docs/security.md) -> builder of its files and cases
    "pickle structure (nesting, sizes, memo, length claims)": pickle_structure,
    "generator config and weights (our format)": generator_config,
    "official-format claims (CGS-GAN pickles)": official_format,
    "3DGS .ply files": ply_files,
    "side-car files (directions, latents, saved latents)": side_cars,
    "photos (inversion input)": photos,
    "training dataset zips": datasets,
    "paths that are not regular files": not_regular,
}

CHILD = Path(__file__).with_name("hostile_child.py")
ROOT = Path(__file__).resolve().parents[2]
MAX_SECONDS = 10.0
MAX_RSS_MB = 500.0
RAW_ERRORS = ("builtins.MemoryError", "builtins.ZeroDivisionError", "builtins.RecursionError",
              "builtins.KeyError", "builtins.TypeError", "builtins.AttributeError", "builtins.IndexError")


def run_family(cases: list[Case], tmp_path: Path) -> tuple[dict, list[dict], subprocess.CompletedProcess]:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"cases": [c.plan() for c in cases]}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
           "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run([sys.executable, str(CHILD), str(plan)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60 + 40 * len(cases))
    setup, results = {}, []
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "setup" in record:
            setup = record["setup"]
        elif "name" in record:
            results.append(record)
    return setup, results, proc


def judge(case: Case, r: dict) -> str | None:
    """Why the result breaks the contract, or None."""
    if r["outcome"] == "timeout":
        return f"hung: {r['message']}"
    if r["seconds"] > MAX_SECONDS:
        return f"took {r['seconds']:.1f} s (limit {MAX_SECONDS:g})"
    if r["peak_rss_mb"] > MAX_RSS_MB:
        return f"peak RSS {r['peak_rss_mb']:.0f} MB (limit {MAX_RSS_MB:g}; {r['rss_before_mb']:.0f} MB before)"
    if isinstance(case.expect, Raises):
        if r["outcome"] != "raised":
            return f"loaded instead of refusing: {r['message'][:200]}"
        if r["type"] in RAW_ERRORS or not set(case.expect.classes) & set(r["mro"]):
            return f"raised {r['type']} (expected {' or '.join(case.expect.classes)}): {r['message'][:300]}"
        if Path(case.path).name not in r["message"]:
            return f"the message does not name the file: {r['message'][:300]}"
        if not re.search(case.expect.pattern, r["message"], re.S):
            return f"message does not match {case.expect.pattern!r}: {r['message'][:300]}"
        return None
    if r["outcome"] != "returned":
        return f"raised {r.get('type')}: {r['message'][:300]}"
    if not re.search(case.expect.pattern, r["message"], re.S):
        return f"returned {r['message'][:300]!r}, expected {case.expect.pattern!r}"
    return None


def _marks(family: str) -> list:
    return [pytest.mark.slow] if family.startswith("photos") else []


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, RLIMIT_AS, FIFOs and /dev/zero (Linux)")
@pytest.mark.parametrize("family", [pytest.param(f, marks=_marks(f), id=f.split(" (")[0].replace(" ", "-"))
                                    for f in FAMILIES])
def test_family(family: str, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    cases = FAMILIES[family](tmp_path / "files")
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    setup, results, proc = run_family(cases, tmp_path)
    by_name = {r["name"]: r for r in results}
    started = re.findall(r'\{"start": "(.*)"\}', proc.stdout)
    crash = (f"child exited with {proc.returncode} during case {started[-1]!r}: {proc.stderr[-2000:]}"
             if proc.returncode != 0 and started else f"child exited with {proc.returncode}: {proc.stderr[-2000:]}")
    assert proc.returncode == 0 and len(results) == len(cases), crash
    failures = [f"{c.name}: {why}" for c in cases if (why := judge(c, by_name[c.name]))]
    report = os.environ.get("HOSTILE_REPORT")
    if report:
        data = json.loads(Path(report).read_text()) if Path(report).exists() else {}
        data[family] = {"setup": setup, "cases": [{**by_name[c.name], "expect": type(c.expect).__name__}
                                                  for c in cases]}
        Path(report).write_text(json.dumps(data, indent=1))
    assert not failures, f"{len(failures)} of {len(cases)} cases broke the contract:\n" + "\n".join(failures)
