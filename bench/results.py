"""Benchmark figures: one entry per figure in bench/results.json, and the readable table bench/RESULTS.md.

Every benchmark script calls :func:`record` for each figure it measures. An entry is keyed by
``(name, device)``: measuring again on the same device replaces the old figure; other devices keep theirs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
# BENCH_RESULTS redirects the figures (e.g. to $OUT on the GPU machine); merge them back with
# `python -m bench.results merge FILE`.
RESULTS_JSON = Path(os.environ.get("BENCH_RESULTS", BENCH_DIR / "results.json"))
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_JSON_DEFAULT = BENCH_DIR / "results.json"


def device_name(device: str | torch.device = "cpu") -> str:
    """A short, stable description of the device a figure was measured on."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores, {threads} torch threads"


def command_line() -> str:
    """The command that produced a figure, as a user would type it (``python -m bench.x ...``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    head = f"python -m {spec.name}" if spec is not None else f"python {Path(sys.argv[0]).name}"
    return " ".join([head] + [shlex.quote(a) for a in sys.argv[1:]])


def load(path: Path = RESULTS_JSON) -> list[dict]:
    if not path.exists():
        return []
    return json.loads(path.read_text())


def record(name: str, value: float, unit: str, device: str, note: str = "", path: Path = RESULTS_JSON) -> dict:
    """Add or replace the figure ``name`` measured on ``device``; rewrite results.json and RESULTS.md."""
    entry = {
        "name": name,
        "value": float(f"{value:.6g}"),
        "unit": unit,
        "device": device,
        "date": _dt.date.today().isoformat(),
        "command": command_line(),
    }
    if note:
        entry["note"] = note
    entries = [e for e in load(path) if not (e["name"] == name and e["device"] == device)]
    entries.append(entry)
    entries.sort(key=lambda e: (e["name"], e["device"]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, path)
    write_markdown(entries, path.with_name(RESULTS_MD.name) if path != RESULTS_JSON_DEFAULT else RESULTS_MD)
    print(f"{name:40s} {entry['value']:>12g} {unit:10s} {device}")
    return entry


def write_markdown(entries: list[dict], path: Path = RESULTS_MD) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by the scripts in bench/ (see the Benchmarks section of README.md); do not edit by hand. One row per figure and device.",
        "",
        "| figure | value | unit | device | date | command | note |",
        "|---|---:|---|---|---|---|---|",
    ]
    for e in entries:
        lines.append(
            f"| {e['name']} | {e['value']:g} | {e['unit']} | {e['device']} | {e['date']} | `{e['command']}` | {e.get('note', '')} |"
        )
    path.write_text("\n".join(lines) + "\n")


def merge(other: Path, path: Path = RESULTS_JSON_DEFAULT) -> None:
    """Fold the entries of another results.json (from the GPU machine) into ours, theirs winning on ties."""
    incoming = load(other)
    keys = {(e["name"], e["device"]) for e in incoming}
    entries = [e for e in load(path) if (e["name"], e["device"]) not in keys] + incoming
    entries.sort(key=lambda e: (e["name"], e["device"]))
    path.write_text(json.dumps(entries, indent=1) + "\n")
    write_markdown(entries, RESULTS_MD)
    print(f"merged {len(incoming)} figures from {other}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "merge":
        merge(Path(sys.argv[2]))
    else:
        print("usage: python -m bench.results merge path/to/results.json", file=sys.stderr)
        sys.exit(2)
