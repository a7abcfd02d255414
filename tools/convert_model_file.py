"""Convert a format-1 ``.pkl`` (generator file or training snapshot) to our safetensors layout, bit for bit,
and re-key the files kept beside it (directions, saved latents) to the new file's SHA-256 (a side-car that
both names share, e.g. ``model.directions.npz`` of ``model.pkl`` and ``model.safetensors``, is re-keyed in
place and then belongs to the new file).

    python tools/convert_model_file.py assets/default_model.pkl assets/default_model.safetensors

Format-1 files keep loading (read-only), so converting is optional; it is how the embedded default model moved.
The tensors are stored in the dtypes they had (a float16 generator stays float16); the file's metadata gains
``converted_from`` and ``converted_from_sha256``. Side-car files are keyed to the model file's SHA-256
(``core.editing.fingerprint``): their numbers are copied unchanged and only the key (and the recorded file
name) changes. Existing outputs are not replaced unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch


def _same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(
                a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))):
            raise AssertionError(f"{where}: the converted tensor differs")
    elif isinstance(a, dict):
        if set(a) != set(b):
            raise AssertionError(f"{where}: keys differ")
        for k in a:
            _same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            raise AssertionError(f"{where}: lengths differ")
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}/{i}")
    elif not (a == b or (a != a and b != b)):
        raise AssertionError(f"{where}: {a!r} != {b!r}")


def convert(old: Path, new: Path, overwrite: bool = False) -> list[str]:
    """Write ``new`` from ``old`` and re-key the side-cars; returns what was done, one line each."""
    from core.checkpoint import Snapshot
    from core.editing.direction_file import directions_path, load_directions
    from core.editing.fingerprint import file_sha256
    from core.editing.saved_latents import latents_path, load_library
    from core.snapshot_pickle import load_pickle_snapshot
    from core.snapshots import load_snapshot, save_snapshot

    old_sha = file_sha256(old)
    old_sidecars = {Path(directions_path(old)), Path(latents_path(old))}  # re-keyed in place when shared
    targets = [new, Path(directions_path(new)), Path(latents_path(new))]
    clash = [t for t in targets if t.exists() and t not in old_sidecars]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} exists (pass --overwrite to replace it)")
    snap = load_pickle_snapshot(old)
    meta = {**snap.metadata, "converted_from": old.name, "converted_from_sha256": old_sha}
    snap = Snapshot(kind=snap.kind, generator_config=snap.generator_config, modules=snap.modules,
                    optimizers=snap.optimizers, training=snap.training, metadata=meta)
    written = save_snapshot(new, snap)
    back = load_snapshot(written)
    for field in ("modules", "optimizers", "training"):
        _same(getattr(snap, field), getattr(back, field), field)
    done = [f"{written}: {written.stat().st_size / 2**20:.2f} MiB, {snap.kind}, tensors bit-identical to {old}"]
    new_sha = file_sha256(written)
    if os.path.exists(directions_path(old)):
        dirs = load_directions(directions_path(old), model_sha256=old_sha)  # checks it belongs to OLD
        _rekey(Path(directions_path(old)), Path(directions_path(written)), new_sha, written.name)
        load_directions(directions_path(written), model_path=written)
        done.append(f"{directions_path(written)}: re-keyed to {new_sha[:12]}... ({len(dirs.directions)} directions, "
                    "arrays byte-identical)")
    if os.path.exists(latents_path(old)):
        library = load_library(latents_path(old), model_sha256=old_sha)
        _rekey(Path(latents_path(old)), Path(latents_path(written)), new_sha, None)
        load_library(latents_path(written), model_sha256=new_sha)
        done.append(f"{latents_path(written)}: re-keyed ({len(library.names)} saved latents)")
    return done


def _rekey(src: Path, dst: Path, sha: str, model_file: str | None) -> None:
    """Copy a side-car ``.npz`` with only its header's model key changed (every array stays as it is)."""
    import io
    import json

    import numpy as np

    from core.atomic_file import atomic_write

    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    header["model_sha256"] = sha
    if model_file is not None and "model_file" in header:
        header["model_file"] = model_file
    arrays["header"] = np.array(json.dumps(header))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_write(dst) as f:
        f.write(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="a format-1 .pkl written by splathead")
    ap.add_argument("new", type=Path, nargs="?", help="the .safetensors to write (default: OLD with that suffix)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = ap.parse_args(argv)
    new = args.new or args.old.with_suffix(".safetensors")
    try:
        for line in convert(args.old, new, args.overwrite):
            print(line)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
