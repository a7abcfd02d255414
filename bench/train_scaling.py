"""Multi-GPU training scaling: wall seconds per kimg with N ranks (torchrun, one process per GPU) at the same
per-GPU settings, and a check that the ranks stay in sync.

Per N in ``--gpus``: ``python -m torch.distributed.run --standalone --nproc_per_node N -m training`` on a
throw-away noise dataset (bench.train_speed.noise_dataset), batch = N x batch_gpu, ``--kimg-per-gpu`` x N
kimg in ``--ticks`` ticks; the first tick (warm-up, cuDNN autotune) is excluded and the figure is the median
of the rest. The loop logs a G checksum over ranks at every snapshot ("ranks in sync" / "OUT OF SYNC"); the
run's final snapshot supplies it.

    python -m bench.train_scaling [--preset cgs256] [--batch-gpu 8] [--gpus 1 2] [--kimg-per-gpu 0.32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import get_args

import torch

from bench.results import device_name, record
from bench.train_speed import noise_dataset
from core.generator import PRESETS
from core.runs import LOG_FILE, read_stats
from training.options import Precision

NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def run_ranks(n: int, data: Path, outdir: Path, args: argparse.Namespace) -> tuple[float, str]:
    """(median s/kimg over the ticks after the first, the sync line of the log) for ``n`` ranks."""
    kimg = args.kimg_per_gpu * n
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "training",
           "--data", str(data), "--outdir", str(outdir), "--preset", args.preset, "--batch", str(n * args.batch_gpu),
           "--batch-gpu", str(args.batch_gpu), "--kimg", f"{kimg:g}", "--tick-kimg", f"{kimg / args.ticks:g}",
           "--snap-kimg", "1e6", "--image-snap-kimg", "1e6", "--num-views", str(args.views), "--workers", "4",
           "--precision", args.precision]
    env = {**os.environ, **NO_MULTICAST, "TQDM_DISABLE": "1"}
    subprocess.run(cmd, check=True, env=env)
    run = next(outdir.iterdir())
    ticks = read_stats(run)
    sync = [line for line in (run / LOG_FILE).read_text().splitlines() if "ranks " in line and "checksum" in line]
    return statistics.median(t["sec_per_kimg"] for t in ticks[1:]), (sync[-1] if sync else "one rank: no sync check")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cgs256", choices=list(PRESETS))
    ap.add_argument("--batch-gpu", type=int, default=8)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--kimg-per-gpu", type=float, default=0.32)
    ap.add_argument("--ticks", type=int, default=4)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--precision", default="tf32", choices=get_args(Precision))
    args = ap.parse_args()
    res = PRESETS[args.preset].resolution
    dev = f"{torch.cuda.device_count()} x {device_name('cuda')}"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = noise_dataset(Path(tmp) / "data", res)
        for n in args.gpus:
            results[n] = run_ranks(n, data, Path(tmp) / f"runs{n}", args)
    base = results[min(results)][0] * min(results)
    for n, (spk, sync) in results.items():
        note = (f"{args.preset}, batch_gpu {args.batch_gpu} x {n} GPU(s), {args.views} views, {args.precision}; "
                f"median of {args.ticks - 1} ticks" + ("" if n == 1 else "; ranks in sync" if " in sync" in sync
                                                       else "; RANKS OUT OF SYNC"))
        record(f"train_s_per_kimg_{args.preset}_{n}gpu", spk, "s/kimg", dev, note=note)
        eff = base / (spk * n)
        print(f"{n} GPU(s): {spk:.2f} s/kimg, speed-up {results[min(results)][0] / spk:.2f}x, "
              f"efficiency {eff:.0%}; {sync}")
        if n > 1:
            record(f"train_scaling_efficiency_{args.preset}_{n}gpu", eff, "fraction", dev, note=note)


if __name__ == "__main__":
    main()
