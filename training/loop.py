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
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.camera import orbit_cameras
from core.generator import PRESETS, Generator, GeneratorConfig
from core.runs import INIT_GRID, LOSS_KEYS, create_run_dir, grid_path
from training.distributed import (
    DistInfo,
    RankFailureWatch,
    all_reduce_mean,
    average_gradients,
    barrier,
    broadcast_module,
    init_distributed,
)
from training.losses import (
    center_loss,
    d_adversarial,
    g_adversarial,
    knn_loss,
    multiview_labels,
    r1_penalty,
    render_for_d,
)
from training.no_sync import FAIL_D, FAIL_G, FAIL_LOSS, FAIL_R1, FAILURES, FailureFlag, to_device
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
from training.stopping import NONE, STOP_FILE, StopWatcher, TrainingStopped

STAT_KEYS = LOSS_KEYS  # the order of the stats vector of Trainer.step (core.runs owns the names)


@dataclass
class Models:
    G: Generator
    G_ema: Generator
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer


PHASE_G, PHASE_D = 1, 2


def step_generator(seed: int, rank: int, step: int, phase: int, round_: int = 0) -> torch.Generator:
    """A CPU generator determined by (seed, rank, step, phase, micro-batch round) alone."""
    state = np.random.SeedSequence([seed, rank, step, phase, round_]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def build_models(opts: TrainOptions, g_config: GeneratorConfig, resolution: int, device: torch.device) -> Models:
    from training.discriminator import Discriminator, DiscriminatorConfig

    G = Generator(g_config).to(device).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D = Discriminator(DiscriminatorConfig(resolution=resolution, channel_base=opts.d_channel_base,
                                          channel_max=opts.d_channel_max, mapping_layers=opts.d_mapping_layers,
                                          num_autocast_blocks=opts.d_bf16_blocks)).to(device).train()
    D.channels_last = opts.channels_last and device.type == "cuda"
    xyz = [p for n, p in G.named_parameters() if n == "xyz_const"]
    rest = [p for n, p in G.named_parameters() if n != "xyz_const"]
    hp = build_hyperparameters(opts)
    (g_lr, g_betas), (xyz_lr, _) = hp["G"]
    # Fused Adam: one kernel per step instead of one per parameter group and operation, and it skips a step
    # on the device when told the gradients are not finite (``found_inf``), so no host sync is needed.
    fused = device.type in FUSED_ADAM_DEVICES
    opt_G = torch.optim.Adam([{"params": rest}, {"params": xyz, "lr": xyz_lr}], lr=g_lr, betas=g_betas, eps=1e-8,
                             fused=fused)
    (d_lr, d_betas), = hp["D"]
    opt_D = torch.optim.Adam(D.parameters(), lr=d_lr, betas=d_betas, eps=1e-8, fused=fused)
    return Models(G, G_ema, D, opt_G, opt_D)


def resolve_generator_config(opts: TrainOptions) -> GeneratorConfig:
    if opts.preset not in PRESETS:
        raise ValueError(f"unknown preset {opts.preset!r}; choose from {sorted(PRESETS)}")
    return PRESETS[opts.preset]


def build_hyperparameters(opts: TrainOptions) -> dict[str, list[tuple[float, tuple[float, float]]]]:
    """(lr, betas) per parameter group: G = [everything else, xyz_const at lr x 0.01]; D with the lazy-R1
    adjustment lr x k/(k+1), betas^(k/(k+1)) for interval k (StyleGAN2)."""
    ratio = opts.r1_interval / (opts.r1_interval + 1)
    d = (opts.d_lr * ratio, (opts.betas[0] ** ratio, opts.betas[1] ** ratio))
    return {"G": [(opts.g_lr, opts.betas), (opts.g_lr * 0.01, opts.betas)], "D": [d]}


def update_ema(m: Models, opts: TrainOptions, cur_nimg: int) -> None:
    ema_nimg = opts.ema_kimg_value * 1000
    if opts.ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * opts.ema_rampup)
    beta = 0.5 ** (opts.batch / max(ema_nimg, 1e-8))
    with torch.no_grad():  # p_ema <- lerp(p, p_ema, beta), all tensors in a few fused kernels
        ema, params = list(m.G_ema.parameters()), [p.detach() for p in m.G.parameters()]
        torch._foreach_copy_(ema, torch._foreach_lerp(params, ema, beta))
        b_ema, b = list(m.G_ema.buffers()), list(m.G.buffers())
        if b_ema:
            torch._foreach_copy_(b_ema, b)


def _clip_and_check(module: nn.Module, max_norm: float, what: str, step: int) -> None:
    """Clip the gradient norm (if ``max_norm`` > 0) and stop the run, before any weight changes, if the
    gradients hold NaN or Inf (a finite loss can still have them, e.g. after an overflow). Synchronises with
    the device; the :class:`Trainer` uses :class:`FailureFlag` instead."""
    if not bool(torch.isfinite(_clip(module, max_norm))):
        raise TrainingStopped(f"non-finite {what} gradients at step {step}; the weights were not updated and "
                              f"the last snapshot is intact. Lower the learning rates or raise gamma, then resume.")


def _clip(module: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the gradient norm if ``max_norm`` > 0; returns the norm before clipping (a 0-dim tensor)."""
    params = [p for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))


class Trainer:
    """State of one rank's training run; :meth:`step` does one optimizer step of G and D.

    Nothing in a step waits for the device on CUDA (the renderer's own tile count aside): random numbers are
    drawn on the CPU from per-step generators (so runs repeat on any device) and copied without blocking,
    non-finite gradients and losses are flagged on the device (:class:`FailureFlag`; the fused Adam steps
    skip themselves once flagged), and the train loop reads the flag a step late or at snapshots.
    """

    def __init__(self, opts: TrainOptions, info: DistInfo, dataset, models: Models, resolution: int) -> None:
        from training.blur import blur_images, blur_sigma

        self.opts, self.info, self.dataset, self.m, self.res = opts, info, dataset, models, resolution
        self._blur, self._blur_sigma = blur_images, blur_sigma
        per_round = opts.batch_gpu * info.world_size
        if opts.batch % per_round:
            raise ValueError(f"batch {opts.batch} is not a multiple of batch_gpu x GPUs = {per_round}")
        self.rounds = opts.batch // per_round
        self.dev = info.device
        self.failure = FailureFlag(self.dev, STAT_KEYS)
        self.fused = all(_use_fused(opt) for opt in (models.opt_G, models.opt_D))
        self._autocast = opts.d_bf16_blocks > 0 and self.dev.type in ("cuda", "cpu")
        self.marker = None  # profiling hook: called with a phase name as each phase ends (bench/train_profile.py)

    def _mark(self, phase: str) -> None:
        if self.marker is not None:
            self.marker(phase)

    def raise_if_failed(self, wait: bool = False) -> None:
        """Raise :class:`TrainingStopped` if a step so far had non-finite gradients or losses (see
        :class:`FailureFlag`). Without ``wait`` a failure may be noticed a step or two late, and with several
        ranks not at all (each rank would notice at a different step and wait for the others forever): the
        loop waits at every tick and snapshot, at the same step on every rank."""
        if wait or self.info.world_size == 1:
            message = self.failure.read(wait)
            if message is not None:
                raise TrainingStopped(message)

    def _d(self, images: torch.Tensor, labels: torch.Tensor, cur_nimg: int, chunks: int = 1) -> torch.Tensor:
        """Logits ``[B]``: the D-input blur in float32, then D (its top blocks in bf16 if asked)."""
        sigma = self._blur_sigma(cur_nimg, self.opts.blur_fade_kimg_value, self.opts.blur_sigma)
        images = self._blur(images, sigma)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self._autocast):
            return self.m.D(images, labels, chunks=chunks)[:, 0]

    def _z_and_labels(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from training.data_stream import sample_labels

        z = torch.randn(self.opts.batch_gpu, self.m.G.config.z_dim, generator=gen)
        c = sample_labels(self.dataset, self.opts.batch_gpu, gen)
        return to_device(z, self.dev), to_device(c, self.dev)

    def _update(self, module: nn.Module, opt: torch.optim.Optimizer, max_norm: float, code: int, step: int) -> None:
        """Average over ranks, clip, flag non-finite gradients, Adam step (skipped on the device if flagged)."""
        average_gradients(module, self.info.world_size)
        if not self.fused:  # a device without fused Adam: the synchronous check
            _clip_and_check(module, max_norm, FAILURES[code], step)
            opt.step()
            return
        self.failure.mark(torch.isfinite(_clip(module, max_norm)), code, step)
        opt.found_inf = self.failure.found_inf()
        try:
            opt.step()
        finally:
            del opt.found_inf

    def step(self, step: int, cur_nimg: int, reals: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One step; ``reals`` holds this rank's ``rounds`` real micro-batches (uint8 images, labels).
        Returns this rank's losses ``[len(STAT_KEYS)]`` (means over the step)."""
        o, m, stats = self.opts, self.m, torch.zeros(len(STAT_KEYS), device=self.dev)
        rank = self.info.rank
        # --- G: multi-view adversarial loss + anchor regularizers
        m.G.requires_grad_(True)
        m.D.requires_grad_(False)
        m.opt_G.zero_grad(set_to_none=True)
        for r in range(self.rounds):
            gen = step_generator(o.seed, rank, step, PHASE_G, r)
            z, c = self._z_and_labels(gen)
            out = m.G(z)
            self._mark("G: G forward")
            labels = multiview_labels(c, o.num_views) if o.multiview else c[:, None]
            images = render_for_d(out.gaussians, labels, self.res, o.random_background, gen)  # [B, V, 3, H, W]
            self._mark("G: render")
            B, V = labels.shape[:2]
            if o.batch_d_calls:  # the V views as one batch [V * B] (view-major), minibatch std per view
                logits = self._d(images.transpose(0, 1).reshape(V * B, *images.shape[2:]),
                                 labels.transpose(0, 1).reshape(V * B, -1), cur_nimg, chunks=V)
                adv = g_adversarial(logits.view(V, B)).mean(dim=1).sum() / V
            else:
                adv = sum(g_adversarial(self._d(images[:, v], labels[:, v], cur_nimg)).mean() for v in range(V)) / V
            center, knn = center_loss(out.anchors), knn_loss(out.anchors, o.knn_k)
            loss = adv + o.center_weight * center + o.knn_weight * knn
            self._mark("G: D forward + regularizers")
            (loss / self.rounds).backward()
            stats[:3] += torch.stack([adv, center, knn]).detach() / self.rounds
            self._mark("G: backward (D, render, G)")
        self._update(m.G, m.opt_G, o.g_clip, FAIL_G, step)
        self._mark("G: clip + Adam")
        # --- D: reals against fakes rendered from their own labels
        m.G.requires_grad_(False)
        m.D.requires_grad_(True)
        m.opt_D.zero_grad(set_to_none=True)
        real_batches = []
        for r in range(self.rounds):
            gen = step_generator(o.seed, rank, step, PHASE_D, r)
            z, c = self._z_and_labels(gen)
            with torch.no_grad():
                out = m.G(z, update_w_avg=True)
                self._mark("D: G forward")
                fake = render_for_d(out.gaussians, c[:, None], self.res, o.random_background, gen)[:, 0]
                self._mark("D: render")
            real_img, real_c = reals[r]
            real = to_device(real_img, self.dev, torch.float32) / 127.5 - 1.0
            real_c = to_device(real_c, self.dev)
            real_batches.append((real, real_c))
            if o.batch_d_calls:  # reals and fakes in one call, minibatch std within each
                logits = self._d(torch.cat([real, fake]), torch.cat([real_c, c]), cur_nimg, chunks=2)
                real_logits, fake_logits = logits.chunk(2)
            else:
                real_logits, fake_logits = self._d(real, real_c, cur_nimg), self._d(fake, c, cur_nimg)
            loss_fake, loss_real = d_adversarial(real_logits, fake_logits)
            self._mark("D: reals + D forward")
            ((loss_fake.mean() + loss_real.mean()) / self.rounds).backward()
            stats[3:5] += torch.stack([loss_fake.mean(), loss_real.mean()]).detach() / self.rounds
            stats[6:8] += torch.stack([real_logits.mean(), fake_logits.mean()]).detach() / self.rounds
            self._mark("D: D backward")
        self._update(m.D, m.opt_D, o.d_clip, FAIL_D, step)
        self._mark("D: clip + Adam")
        # --- lazy R1 on the reals
        if o.gamma > 0 and step % o.r1_interval == 0:
            m.opt_D.zero_grad(set_to_none=True)
            for real, real_c in real_batches:
                real = real.detach().requires_grad_(True)
                penalty = r1_penalty(real, self._d(real, real_c, cur_nimg))
                (penalty.mean() * (o.gamma / 2) * o.r1_interval / self.rounds).backward()
                stats[5] += penalty.mean().detach() / self.rounds
            self._update(m.D, m.opt_D, o.d_clip, FAIL_R1, step)
            self._mark("R1 (every r1_interval steps)")
        m.D.requires_grad_(False)
        self.failure.mark(torch.isfinite(stats).all(), FAIL_LOSS, step, stats)
        return stats


FUSED_ADAM_DEVICES = ("cuda", "cpu")


def _use_fused(opt: torch.optim.Optimizer) -> bool:
    """Make ``opt`` (an Adam) use the fused implementation if it does not yet (e.g. restored from a snapshot
    written by a non-fused one: the optimizer state dict carries the flag); False if the device has none."""
    params = [p for g in opt.param_groups for p in g["params"]]
    if not params or params[0].device.type not in FUSED_ADAM_DEVICES:
        return False
    for g in opt.param_groups:
        if not g.get("fused"):
            g["fused"], g["foreach"] = True, False
            for p in g["params"]:
                st = opt.state.get(p, {})
                if "step" in st:  # fused Adam keeps the step count on the parameter's device, as float32
                    st["step"] = torch.as_tensor(st["step"], dtype=torch.float32).to(p.device)
    return True


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
    try:
        return _train(opts, info, progress, launch_file, ctx)
    except BaseException as exc:
        record_failure(exc, watch, ctx.log, ctx.run_dir, info)
        raise
    finally:
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
