"""The CGS-GAN training loop (``train(options)``), single process or one process per GPU under torchrun.

Per step (``batch`` images, accumulated over ``batch / (batch_gpu * world_size)`` micro-batches per rank):

1. G: generate scenes from z (no camera), render each from ``num_views`` cameras of other samples
   (multi-view regularization; one batched render call), D judges every view with that view's label, the
   non-saturating loss is averaged over views; plus the KNN and centre regularizers on level-0 anchors.
2. D: reals (x-flipped, composited on random backgrounds) against fakes rendered from their own labels;
   both blurred while the blur fades (first ``blur_fade_kimg``). Every ``r1_interval`` steps a separate lazy
   R1 step on the reals.
3. Gradients averaged over ranks, clipped (after averaging, unlike the official per-GPU clipping), Adam.
4. EMA generator, w_avg tracked during the D step.

Randomness (z, labels, backgrounds) is drawn from a generator seeded by (seed, rank, step, phase), and the
data stream is indexed by sample count, so a resumed run continues exactly as the uninterrupted one would.

This module runs the run (run directory, resume, ticks, snapshots, stopping, ranks); training/trainer.py holds
the models and the step (:class:`Trainer`), whose public names are importable from here as well.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.camera import orbit_cameras
from core.generator import Generator, GeneratorConfig
from core.runs import INIT_GRID, create_run_dir, grid_path
from training.distributed import (
    DistInfo,
    RankFailureWatch,
    all_reduce_mean,
    barrier,
    broadcast_module,
    init_distributed,
)
from training.options import TrainOptions
from training.run_dir import RunLog, prepare_run_dir, record_failure, save_grid
from training.snapshots import (  # noqa: F401 (restore and resume_differences are part of this module's API)
    ResumePoint,
    TrainingProgress,
    find_resume_point,
    resume_differences,
    restore,
    set_rng_state,
    write_training_snapshot,
)
from training.stopping import NONE, STOP_FILE, StopWatcher, TrainingStopped  # noqa: F401 (TrainingStopped: API)
from training.trainer import (  # noqa: F401 (Models, build_hyperparameters: part of this module's API)
    STAT_KEYS,
    Models,
    Trainer,
    build_hyperparameters,
    build_models,
    resolve_generator_config,
    update_ema,
)


def image_grid(G: Generator, resolution: int, device: torch.device, rows: int = 4) -> np.ndarray:
    """``[rows, 5, H, W, 3]``: fixed seeds (rows) x views from -46 to +46 degrees of yaw, white background."""
    z = torch.randn(rows, G.config.z_dim, generator=torch.Generator().manual_seed(123)).to(device)
    cams = orbit_cameras(torch.linspace(-0.8, 0.8, 5), 0.1).to(device)
    with torch.no_grad():
        out = G(z, cameras=cams, resolution=resolution)
    return out.render.color.float().cpu().numpy()


def train(opts: TrainOptions, info: DistInfo | None = None, progress: bool = True,
          launch_file: str | None = None) -> Path:
    """Run (or continue) training; returns the run directory. Raises :class:`TrainingStopped` on a
    non-finite loss or a snapshot that cannot be written, after logging it (the last snapshot stays the
    newest file). ``launch_file``: the ``--options-json`` file, recorded in status.json for the launcher.

    With several ranks, a rank that fails tells the others through the process group's store and they stop
    within about a second (:class:`training.distributed.RankFailureWatch`); the error goes to error.txt."""
    info = info or init_distributed(opts.device)
    ctx = _RunContext()

    def peer_failed(message: str) -> None:  # on the watch thread, just before this process exits
        if ctx.log is not None:
            ctx.log.error(message)

    watch = RankFailureWatch(info, peer_failed)
    watch.start()
    # --deterministic switches a process-wide PyTorch mode; a caller in the same process (the tests, a
    # notebook) gets its own mode back afterwards
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        return _train(opts, info, progress, launch_file, ctx)
    except BaseException as exc:
        record_failure(exc, watch, ctx.log, ctx.run_dir, info)
        raise
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        watch.stop()
        if ctx.log is not None:
            ctx.log.close()
        if info.world_size > 1:  # leave no process group behind (another rank may still be waiting on us)
            from training.distributed import shutdown

            shutdown()


@dataclass
class _RunContext:
    """What the failure handler of :func:`train` needs to know of the run so far."""

    log: RunLog | None = None
    run_dir: Path | None = None


def _train(opts: TrainOptions, info: DistInfo, progress: bool, launch_file: str | None, ctx: _RunContext) -> Path:
    from training.data_stream import infinite_batches
    from training.dataset import DatasetOptions, ImageLabelDataset

    start_time = time.time()
    if opts.deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=info.device.type == "cuda")
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes; makes the R1 double backward ~4x faster
    if info.device.type == "cuda":  # explicit for every precision: "fp32" really means no TF32
        torch.backends.cuda.matmul.allow_tf32 = opts.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = opts.precision != "fp32"
    point: ResumePoint | None = find_resume_point(opts.resume) if opts.resume else None  # headers only
    run_dir = point.run_dir if point is not None else None
    g_config = (GeneratorConfig.from_dict(point.generator_config) if point else resolve_generator_config(opts))
    dataset = ImageLabelDataset(DatasetOptions(path=opts.data, xflip=opts.mirror, masks=opts.masks,
                                               random_background=opts.random_background, seed=opts.seed,
                                               index_list=opts.index_list, max_images=opts.max_images))
    res = opts.resolution or g_config.resolution
    if dataset.resolution != res:
        raise ValueError(f"{opts.data}: images are {dataset.resolution} px but training renders at {res} px; "
                         f"pass --resolution {dataset.resolution} or use a {res} px dataset")
    torch.manual_seed(opts.seed * info.world_size + info.rank)
    m = build_models(opts, g_config, res, info.device)
    if opts.precision == "bf16":
        m.G.feature_dtype = torch.bfloat16
    cur_nimg = step = samples_drawn = 0
    resumed = point.load(m) if point is not None else None  # the tensor table is checked first
    if resumed is not None:
        cur_nimg, step, samples_drawn = restore(m, resumed, opts)
    for module in (m.G, m.G_ema, m.D):
        broadcast_module(module)

    name = f"{opts.preset}-{Path(opts.data).stem}" + (f"-{opts.desc}" if opts.desc else "")
    if info.is_main and run_dir is None:
        run_dir = create_run_dir(opts.outdir, name)
    run_dir = ctx.run_dir = _share_run_dir(run_dir, info)
    log = ctx.log = RunLog(run_dir, enabled=info.is_main, purge_step=cur_nimg if resumed is not None else None)
    if info.is_main:
        prepare_run_dir(log, run_dir, opts, g_config, m, info, point, resumed, cur_nimg, start_time, launch_file)
        if cur_nimg == 0:
            save_grid(run_dir / INIT_GRID, image_grid(m.G_ema, res, info.device))
    rng = resumed.training.get("rng") if resumed is not None else None
    if isinstance(rng, list) and len(rng) == info.world_size:
        set_rng_state(rng[info.rank], info.device)

    watcher = StopWatcher(run_dir, info.is_main, opts.stop_after_minutes, start_time)
    if watcher.remove_stale_stop_file():
        log.log(f"removed a stale {STOP_FILE} file (older than this process)")
    stop_reason = NONE
    trainer = Trainer(opts, info, dataset, m, res)
    stream = infinite_batches(dataset, opts.batch_gpu, rank=info.rank, world_size=info.world_size, seed=opts.seed,
                              num_workers=opts.workers, start_index=samples_drawn)
    total = int(opts.kimg * 1000)
    tick_start, tick_nimg, tick_time, tick_stats, tick_r1 = time.time(), cur_nimg, time.time(), [], []
    next_snap = _next_multiple(cur_nimg, opts.snap_kimg)
    next_grid = _next_multiple(cur_nimg, opts.image_snap_kimg)
    next_tick = _next_multiple(cur_nimg, opts.tick_kimg)
    bar = _progress_bar(total, cur_nimg) if (progress and info.is_main) else None
    watcher.install_signal_handlers()
    try:
        while cur_nimg < total:
            reals = [next(stream) for _ in range(trainer.rounds)]
            samples_drawn += trainer.rounds * opts.batch_gpu
            stats = all_reduce_mean(trainer.step(step, cur_nimg, reals), info.world_size)
            trainer.raise_if_failed()  # non-blocking: notices a failure a step or two late, never saves it
            while trainer.notes:
                log.log(trainer.notes.pop(0))
            cur_nimg += opts.batch
            step += 1
            update_ema(m, opts, cur_nimg)
            tick_stats.append(stats)
            if opts.gamma > 0 and (step - 1) % opts.r1_interval == 0:  # step was already incremented
                tick_r1.append(stats[5])
            if bar is not None:
                bar.update(opts.batch)
            done = cur_nimg >= total
            stop_reason = NONE if done else watcher.decide(cur_nimg >= next_tick, info.world_size, info.device)
            stop = stop_reason != NONE
            if cur_nimg >= next_tick or done or stop:
                trainer.raise_if_failed(wait=True)
                if bar is not None:  # reading losses waits for the device: once a tick, not every step
                    bar.set_postfix({k: f"{v:.3f}" for k, v in zip(STAT_KEYS[:2] + STAT_KEYS[3:5],
                                                                   stats[[0, 1, 3, 4]].tolist())})
                _log_tick(log, tick_stats, tick_r1, cur_nimg, tick_nimg, tick_time, tick_start, total, info)
                tick_stats, tick_r1, tick_nimg, tick_time = [], [], cur_nimg, time.time()
                next_tick = _next_multiple(cur_nimg, opts.tick_kimg)
            if info.is_main and (cur_nimg >= next_grid or done or stop):
                save_grid(grid_path(run_dir, cur_nimg), image_grid(m.G_ema, res, info.device))
                next_grid = _next_multiple(cur_nimg, opts.image_snap_kimg)
            if cur_nimg >= next_snap or done or stop:
                trainer.raise_if_failed(wait=True)  # never save a state after a failure
                _log_sync(log, m.G, info)
                written = write_training_snapshot(run_dir, m, opts, TrainingProgress(
                    cur_nimg, step, samples_drawn, info.world_size), info, len(dataset))  # all ranks (RNG states)
                if written is not None:
                    log.log(f"snapshot {written.name}")
                    log.status(last_snapshot=written.name)
                barrier()
                next_snap = _next_multiple(cur_nimg, opts.snap_kimg)
            if stop:
                watcher.acknowledge()
                reason = watcher.describe(stop_reason, opts.stop_after_minutes)
                log.log(f"{reason} at {cur_nimg / 1000:.3f} kimg after {(time.time() - start_time) / 60:.1f} min; "
                        f"snapshot {log.status_field('last_snapshot')} written; continue with --resume {run_dir}")
                log.status(state="stopped", stop_reason=reason)
                break
    finally:
        watcher.restore_signal_handlers()
        if bar is not None:
            bar.close()
    if stop_reason == NONE:
        log.log(f"done: {cur_nimg / 1000:.3f} kimg")
        log.status(state="finished")
    return run_dir


def _log_sync(log: RunLog, G: Generator, info: DistInfo) -> None:
    """With several ranks, log whether G's parameters agree across ranks (float64 sum and sum of squares
    per rank; they should be equal bit for bit, since every rank applies the same averaged gradients)."""
    if info.world_size <= 1:
        return
    import torch.distributed as dist

    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1).double() for p in G.parameters()])
        mine = torch.stack([flat.sum(), flat.square().sum()])
    every = [torch.zeros_like(mine) for _ in range(info.world_size)]
    dist.all_gather(every, mine)
    sums = torch.stack(every).cpu()
    spread = float((sums - sums[0]).abs().max())
    verdict = "in sync" if spread == 0.0 else f"OUT OF SYNC (max difference {spread:.3g})"
    log.log(f"ranks {verdict}: G checksum {sums[0, 0].item():.10g} / {sums[0, 1].item():.10g} on "
            f"{info.world_size} ranks")


def _next_multiple(nimg: int, every_kimg: float) -> int:
    every = max(1, int(round(every_kimg * 1000)))
    return (nimg // every + 1) * every


def _share_run_dir(run_dir: Path | None, info: DistInfo) -> Path:
    """Rank 0 decides the run directory; the others learn it."""
    if info.world_size == 1:
        return run_dir
    import torch.distributed as dist

    box = [str(run_dir) if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def _progress_bar(total: int, start: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="img", unit_scale=True, dynamic_ncols=True, desc="training")


def _log_tick(log: RunLog, tick_stats: list[torch.Tensor], tick_r1: list[torch.Tensor], cur_nimg: int,
              tick_nimg: int, tick_time: float, start: float, total: int, info: DistInfo) -> None:
    """One line of log.txt and stats.jsonl (means over the tick's steps; R1 over the steps that ran it) and
    the progress in status.json."""
    now = time.time()
    mean = torch.stack(tick_stats).mean(0).tolist() if tick_stats else [math.nan] * len(STAT_KEYS)
    mean[STAT_KEYS.index("D_r1")] = torch.stack(tick_r1).mean().item() if tick_r1 else None  # null in JSON
    sec_per_kimg = (now - tick_time) / max((cur_nimg - tick_nimg) / 1000, 1e-9)
    record = {"kimg": cur_nimg / 1000, "sec_per_kimg": sec_per_kimg, "time_s": now - start,
              "eta_s": sec_per_kimg * (total - cur_nimg) / 1000, **dict(zip(STAT_KEYS, mean))}
    if info.device.type == "cuda":
        record["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(info.device) / 2**30
    log.stats(record)
    log.status(kimg=record["kimg"], sec_per_kimg=sec_per_kimg, eta_s=record["eta_s"])
    log.log(f"kimg {record['kimg']:.3f}  {sec_per_kimg:.1f} s/kimg  ETA {record['eta_s'] / 60:.1f} min  "
            + "  ".join(f"{k} {v:.4f}" for k, v in zip(STAT_KEYS, mean) if v is not None))
