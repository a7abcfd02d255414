"""``python -m training --data DATASET [options]``: train a CGS-GAN-style generator.

Every option, with its default, is listed by ``python -m training --help``. Multi-GPU:
``torchrun --nproc_per_node 4 -m training --data ... --batch 32 --batch-gpu 8``.

Options can also come from a JSON file, ``--options-json FILE``: an object of TrainOptions fields (any subset;
the rest keep their defaults; unknown names are refused), or a run's ``options.json``. Options given on the
command line override the file. With ``--resume``, the snapshot's run supplies the defaults (its options,
except ``resume`` and ``stop_after_minutes``), so ``python -m training --resume SNAPSHOT`` continues a run
as it was, on any machine where its dataset path exists (else add ``--data``).

Examples:
    python -m training --data datasets/heads128 --preset cpu128 --batch 16 --batch-gpu 8 --kimg 2000
    python -m training --resume runs/00003-cpu128-heads128            # continue a killed or stopped run
    python -m training --resume runs/00003-cpu128-heads128/network-snapshot-000040.safetensors --kimg 400
    python -m training --options-json launch.json --stop-after-minutes 30
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from core.runs import OPTIONS_JSON_FLAG

PROG = "python -m training"


def _pop_flag(argv: list[str], flag: str) -> str | None:
    """Remove ``flag VALUE`` / ``flag=VALUE`` from ``argv``; return VALUE (the last one given)."""
    value = None
    i = 0
    while i < len(argv):
        if argv[i] == flag:
            if i + 1 >= len(argv):
                raise ValueError(f"{flag} needs a value")
            value = argv[i + 1]
            del argv[i : i + 2]
        elif argv[i].startswith(flag + "="):
            value = argv[i].split("=", 1)[1]
            del argv[i]
        else:
            i += 1
    return value


def _peek_flag(argv: list[str], flag: str) -> str | None:
    return _pop_flag(list(argv), flag)


def read_options_json(path: str | Path) -> dict[str, Any]:
    """The TrainOptions fields in ``path``: a plain object of fields, or a run's options.json."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read the options file ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("options"), dict) and "generator" in data:
        data = data["options"]  # a run directory's options.json
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of training options")
    return data


def resolve_defaults(argv: list[str]) -> tuple[Any, list[str], str | None]:
    """``(TrainOptions defaults or None, argv without --options-json, the options file)``."""
    from training.options import TrainOptions
    from training.snapshots import PER_INVOCATION_FIELDS, SAVED_BEFORE_FIELD, find_resume_point

    argv = list(argv)
    options_file = _pop_flag(argv, OPTIONS_JSON_FLAG)
    given = read_options_json(options_file) if options_file else {}
    resume = _peek_flag(argv, "--resume") or given.get("resume")
    merged: dict[str, Any] = {}
    if resume:
        known = {f for f in TrainOptions.__dataclass_fields__}
        saved = find_resume_point(resume).options
        # a run saved before an option existed continues with what it used then, not today's default
        merged = {**SAVED_BEFORE_FIELD,
                  **{k: v for k, v in saved.items() if k in known and k not in PER_INVOCATION_FIELDS}}
    merged.update(given)
    if not merged:
        return None, argv, options_file
    merged.setdefault("data", "")  # required: from the command line then (checked after parsing)
    return TrainOptions.from_dict(merged), argv, options_file


def main(argv: list[str] | None = None) -> int:
    import tyro

    from training.loop import TrainingStopped, train
    from training.options import TrainOptions

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        defaults, argv, options_file = resolve_defaults(argv)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if defaults is None:
        opts = tyro.cli(TrainOptions, args=argv, prog=PROG, description=__doc__)
    else:
        opts = tyro.cli(TrainOptions, args=argv, prog=PROG, description=__doc__, default=defaults)
    if not opts.data:
        print("error: no dataset: pass --data (or put data in the --options-json file)", file=sys.stderr)
        return 2
    try:
        run_dir = train(opts, launch_file=options_file)
    except TrainingStopped as exc:
        print(f"training stopped: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
