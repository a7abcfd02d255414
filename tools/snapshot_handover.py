"""Move a sharded training snapshot between this machine and the lent GPU machine, within the device tool's limits.

A training run that outlives one device lease travels as its newest snapshot (training/snapshots.py: an
``.index.json`` plus safetensors parts). The device tool returns at most 8 files of 16 MiB, 64 MiB in all, per
call, and takes at most 64 MiB into a call *with* the working tree, so a snapshot of a few hundred MiB moves
in several calls on one warm machine (files in ignored folders stay there between calls). Train with
``--snapshot-max-part-mib 15`` so that every part fits one returned file.

    # on the GPU machine, call K = 0, 1, ... until it says it was the last:
    python tools/snapshot_handover.py out runs/RUN $OUT --call K     # the run's newest snapshot (or name its index)
    # here: the returned folders, put together and checked (sizes and SHA-256 against the index):
    python tools/snapshot_handover.py gather .handover/snap /work/.device/7 /work/.device/8 ...
    # here: split into carry folders that fit beside the working tree (prints one carry path per call):
    python tools/snapshot_handover.py stage .handover/snap/network-snapshot-000200.safetensors.index.json \\
        .handover/in --max-mib 36
    # on the GPU machine, after the calls that carried .handover/in/00, /01, ...:
    python tools/snapshot_handover.py gather .handover/snap .handover/in/*   # then --resume .handover/snap/...

Between sessions nothing survives but the repository, so a run that goes on in a later session is committed
in its compact hand-over form (training/handover.py: G and D, large tensors float16, 69 MiB for v2, instead of
307 MiB), and expanded again on the GPU machine:

    python tools/snapshot_handover.py compact .handover/snap/network-snapshot-000152.safetensors.index.json handover/v2
    python tools/snapshot_handover.py expand .handover/compact/network-snapshot-000152.safetensors.index.json .handover/snap

How the run went travels beside it: ``report RUN $OUT`` copies its log, per-tick losses and newest image grid.

Every step copies (never moves) and refuses to overwrite a different file of the same name (``report``: any
file).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20
# The device tool's limits on what comes back from one call (/work/.library/device/README.md, "Limits").
OUT_FILES, OUT_FILE_MIB, OUT_TOTAL_MIB = 8, 16, 64


@dataclass(frozen=True)
class Part:
    """One file of a snapshot: its name, size in bytes and SHA-256 (hex), as its index records them
    (the index itself has ``sha256 = None``)."""

    name: str
    size: int
    sha256: str | None


def snapshot_parts(index: Path) -> list[Part]:
    """The index file first, then its parts in order, as the index records them (read and checked by
    core.tensor_file_reader, the format's one reader); a single-file snapshot is one part (with its SHA-256).
    ``index`` may also be a run directory: its newest snapshot. Raises ``ValueError`` for anything else."""
    from core.checkpoint import CheckpointError
    from core.tensor_file_reader import open_tensor_file

    index = resolve(index)
    try:
        tf = open_tensor_file(index)
    except (CheckpointError, OSError) as e:
        raise ValueError(f"not a readable snapshot: {e}") from e
    if not tf.parts:  # a single file: it travels whole (out refuses it if it is larger than one file may be)
        from core.editing.fingerprint import file_sha256

        return [Part(tf.path.name, tf.path.stat().st_size, file_sha256(tf.path))]
    return [Part(tf.path.name, tf.path.stat().st_size, None)] + [Part(p.path.name, p.size, p.sha256)
                                                                   for p in tf.parts]


def groups(parts: list[Part], max_files: int, max_bytes: int, max_file_bytes: int | None = None) -> list[list[Part]]:
    """``parts`` in order, cut into consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes."""
    out: list[list[Part]] = [[]]
    for p in parts:
        if p.size > (max_file_bytes or max_bytes):
            raise ValueError(f"{p.name} has {p.size / MIB:.1f} MiB, more than one call takes "
                             f"({(max_file_bytes or max_bytes) / MIB:.1f} MiB): write smaller parts")
        if out[-1] and (len(out[-1]) == max_files or sum(q.size for q in out[-1]) + p.size > max_bytes):
            out.append([])
        out[-1].append(p)
    return out


def copy_new(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (core.atomic_file); an existing ``dst`` must already be the same bytes
    (never overwritten)."""
    from core.atomic_file import atomic_path
    from core.editing.fingerprint import file_sha256

    if dst.exists():
        if dst.stat().st_size != src.stat().st_size or file_sha256(dst) != file_sha256(src):
            raise FileExistsError(f"{dst} exists and differs from {src}; remove it first if it is stale")
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def out_call(index: Path, out: Path, call: int, compact_dir: Path | None = None) -> tuple[int, int]:
    """Copy the ``call``-th group of the snapshot's files into ``out``; returns (files copied, calls in all).
    With ``compact_dir``, the snapshot's compact hand-over form goes out instead: written there by the first
    call (:func:`compacted`), reused by the others."""
    index = resolve(index)
    if compact_dir is not None:
        index = compacted(index, compact_dir)
    gs = groups(snapshot_parts(index), OUT_FILES, OUT_TOTAL_MIB * MIB, OUT_FILE_MIB * MIB)
    if not 0 <= call < len(gs):
        raise ValueError(f"call {call} is out of range: this snapshot leaves in {len(gs)} calls (0..{len(gs) - 1})")
    for p in gs[call]:
        copy_new(index.parent / p.name, out / p.name)
    return len(gs[call]), len(gs)


def compacted(index: Path, folder: Path) -> Path:
    """The compact form of the snapshot ``index`` in ``folder``: the one already there, else a new one."""
    from training.handover import compact

    return written(target_path(index, folder)) or rewrite(index, folder, compact, OUT_FILE_MIB - 1)


def stage(index: Path, dest: Path, max_mib: float) -> list[Path]:
    """Copy the snapshot's files into ``dest/00``, ``dest/01``, ... of at most ``max_mib`` each (one carry each).
    ``dest`` must be new or empty (an earlier snapshot's folders would be carried along)."""
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty (an earlier hand-over?): remove it or choose another folder")
    folders = []
    index = resolve(index)
    for i, g in enumerate(groups(snapshot_parts(index), 10**6, int(max_mib * MIB))):
        folder = dest / f"{i:02d}"
        for p in g:
            copy_new(index.parent / p.name, folder / p.name)
        folders.append(folder)
    return folders


def gather(dest: Path, sources: list[Path]) -> Path:
    """Copy the one snapshot that ``sources`` (folders) hold into ``dest`` and check it there; returns its index.

    A single-file snapshot (no index, one ``NAME.safetensors`` among the sources) is copied and its headers
    checked. Otherwise exactly one ``*.index.json`` must be among the sources; only it and its parts (named after it,
    core.tensor_files.part_path) are copied, so other files there (logs) and earlier snapshots in ``dest``
    do not interfere. Raises ``ValueError`` when no index or more than one is found, or a part is missing,
    short or changed (sizes, snapshot ids and the weight map by core.tensor_file_reader, then every part's
    SHA-256).
    """
    from core.tensor_files import INDEX_SUFFIX, SUFFIX, is_part_name

    files = [f for src in sources for f in sorted(src.iterdir()) if f.is_file()]
    indexes = [f for f in files if f.name.endswith(INDEX_SUFFIX)]
    singles = [f for f in files if f.name.endswith(SUFFIX) and not is_part_name(f.name)]
    if not indexes and len(singles) == 1:  # a single-file snapshot: copied, then opened (headers checked)
        from core.tensor_file_reader import open_tensor_file

        copy_new(singles[0], dest / singles[0].name)
        open_tensor_file(dest / singles[0].name)
        return dest / singles[0].name
    if len(indexes) != 1:
        raise ValueError(f"{[str(s) for s in sources]}: expected one snapshot index among them, found "
                         f"{[p.name for p in indexes] or 'none'}")
    stem = indexes[0].name[: -len(INDEX_SUFFIX)]  # NAME of NAME.safetensors(.index.json); parts NAME-i-of-n
    for f in files:
        if f == indexes[0] or (f.name.startswith(stem + "-") and f.name.endswith(SUFFIX)):
            copy_new(f, dest / f.name)
    index = dest / indexes[0].name
    from core.editing.fingerprint import file_sha256

    changed = [p.name for p in snapshot_parts(index)[1:] if file_sha256(dest / p.name) != p.sha256]
    if changed:
        raise ValueError(f"{dest}: SHA-256 differs from the index for {changed}: damaged or incomplete copies")
    return index


def target_path(src: Path, dest: Path) -> Path:
    """``dest/NAME.safetensors`` for the snapshot ``src`` (``NAME.safetensors`` or its ``.index.json``)."""
    from core.tensor_files import INDEX_SUFFIX, SUFFIX

    return dest / (src.name[: -len(INDEX_SUFFIX)] + SUFFIX if src.name.endswith(INDEX_SUFFIX) else src.name)


def written(target: Path) -> Path | None:
    """The snapshot file already at ``target`` (``NAME.safetensors``): itself or its ``.index.json``, or None."""
    from core.tensor_files import index_path

    return next((p for p in (target, index_path(target)) if p.exists()), None)


def rewrite(src: Path, dest: Path, transform, max_part_mib: float) -> Path:
    """Write ``transform(snapshot)`` (``training.handover.compact`` or ``expand``) of the snapshot ``src`` into
    the folder ``dest``, under the same name, in parts of at most ``max_part_mib``; returns the new file to
    open. Refuses (FileExistsError) to replace a file there."""
    from core.snapshots import load_snapshot, save_snapshot

    src = resolve(src)
    target = target_path(src, dest)
    existing = written(target)
    if existing is not None:
        raise FileExistsError(f"{existing} exists; remove it or choose another folder")
    new = transform(load_snapshot(src))
    dest.mkdir(parents=True, exist_ok=True)
    return save_snapshot(target, new, max_part_bytes=int(max_part_mib * MIB))


def report(run_dir: Path, out: Path) -> list[Path]:
    """Copy what tells how a run went into ``out``: its log and per-tick losses (core.runs' LOG_FILE and
    STATS_FILE, named ``<run>_<file>`` so runs do not collide) and its newest image grid. Refuses to overwrite;
    returns the copies. ValueError when ``run_dir`` is not a run directory."""
    from core.runs import LOG_FILE, STATS_FILE, is_run_dir, newest_grid

    if not is_run_dir(run_dir):
        raise ValueError(f"{run_dir} is not a run directory")
    pairs = [(run_dir / f, out / f"{run_dir.name}_{f}") for f in (LOG_FILE, STATS_FILE) if (run_dir / f).is_file()]
    grid = newest_grid(run_dir)
    if grid is not None:
        pairs.append((grid, out / grid.name))
    for _, dst in pairs:
        if dst.exists():
            raise FileExistsError(f"{dst} exists; remove it or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in pairs:
        shutil.copyfile(src, dst)
    return [dst for _, dst in pairs]


def resolve(index: Path) -> Path:
    """``index``, or the newest snapshot's file when it is a run directory (ValueError if it has none)."""
    from core.runs import is_run_dir, latest_snapshot

    if not is_run_dir(index):
        return index
    newest = latest_snapshot(index)
    if newest is None:
        raise ValueError(f"{index}: the run has no snapshot yet")
    return newest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("out", help="on the GPU machine: copy one call's share of the snapshot into $OUT")
    o.add_argument("index", type=Path)
    o.add_argument("out", type=Path)
    o.add_argument("--call", type=int, required=True)
    o.add_argument("--compact-dir", type=Path, default=None,
                   help="hand out the snapshot's compact form (written into this folder by the first call)")
    s = sub.add_parser("stage", help="split the snapshot into carry folders of at most --max-mib")
    s.add_argument("index", type=Path)
    s.add_argument("dest", type=Path)
    s.add_argument("--max-mib", type=float, required=True)
    g = sub.add_parser("gather", help="put the files of several folders together and check the snapshot")
    g.add_argument("dest", type=Path)
    g.add_argument("sources", type=Path, nargs="+")
    for how, text in (("compact", "write the session hand-over form (float16 G and D, no G_ema or Adam moments: "
                                   "training/handover.py) of a snapshot into a folder"),
                      ("expand", "turn a compact hand-over back into a full training snapshot to --resume from")):
        r = sub.add_parser(how, help=text)
        r.add_argument("src", type=Path, help="the snapshot (its .index.json, a single file or a run directory)")
        r.add_argument("dest", type=Path, help="the folder to write it into (same file name)")
        r.add_argument("--max-part-mib", type=float, default=15.0)
    p = sub.add_parser("report", help="copy a run's log, losses and newest image grid into a folder ($OUT)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "out":
            n, total = out_call(args.index, args.out, args.call, args.compact_dir)
            print(f"call {args.call}: {n} files into {args.out}; {total} calls in all"
                  + (" (this was the last)" if args.call == total - 1 else ""))
        elif args.cmd == "stage":
            folders = stage(args.index, args.dest, args.max_mib)
            print(f"{len(folders)} carry folders (one per call):")
            print("\n".join(str(f) for f in folders))
        elif args.cmd in ("compact", "expand"):
            from training import handover

            path = rewrite(args.src, args.dest, getattr(handover, args.cmd), args.max_part_mib)
            print(f"{args.cmd}: {path}")
        elif args.cmd == "report":
            for path in report(args.run_dir, args.out):
                print(f"report: {path}")
        else:
            index = gather(args.dest, args.sources)
            print(f"complete and checked: {index}")
    except (ValueError, OSError) as e:  # core.checkpoint's errors are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
