"""One rank's training state and step: the models and optimizers, the per-step random streams, G and D updates,
the EMA, and the fused-Adam and non-finite-gradient handling (:class:`Trainer`). training/loop.py runs it.

The step itself (multi-view G loss, regularizers, D loss, lazy R1, gradient averaging and clipping, Adam, EMA)
is described in training/loop.py's docstring.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.generator import PRESETS, Generator, GeneratorConfig
from core.runs import LOSS_KEYS
from training.distributed import DistInfo, average_gradients
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
from training.stopping import TrainingStopped

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


def discriminator_config(opts: TrainOptions, resolution: int):
    """The ``training.discriminator.DiscriminatorConfig`` that ``opts`` describe for ``resolution`` px images
    (size and bf16 blocks; the blur and the memory layout are not part of it)."""
    from training.discriminator import DiscriminatorConfig

    return DiscriminatorConfig(resolution=resolution, channel_base=opts.d_channel_base,
                               channel_max=opts.d_channel_max, mapping_layers=opts.d_mapping_layers,
                               num_autocast_blocks=opts.d_bf16_blocks)


def build_discriminator(opts: TrainOptions, resolution: int, device: torch.device) -> nn.Module:
    """The discriminator ``opts`` describe (size, bf16 blocks, blur, channels-last on CUDA) for ``resolution``
    px images, on ``device`` in train mode."""
    from training.discriminator import Discriminator

    D = Discriminator(discriminator_config(opts, resolution), blur_impl=opts.d_blur).to(device).train()
    D.channels_last = opts.channels_last and device.type == "cuda"
    return D


def build_models(opts: TrainOptions, g_config: GeneratorConfig, resolution: int, device: torch.device) -> Models:
    G = Generator(g_config).to(device).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D = build_discriminator(opts, resolution, device)
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
    return PRESETS[opts.preset]  # TrainOptions refuses unknown presets


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
        self._fakes_graph = None  # the D step's generator forward from a CUDA graph (opts.g_cuda_graphs), or False
        self.notes: list[str] = []  # what the loop should log once (e.g. a CUDA graph that could not be captured)

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
        """Logits ``[B]``: the D-input blur in float32 (TF32 products under precision="tf32"), then D (its top blocks in bf16 if asked)."""
        sigma = self._blur_sigma(cur_nimg, self.opts.blur_fade_kimg_value, self.opts.blur_sigma)
        images = self._blur(images, sigma)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self._autocast):
            return self.m.D(images, labels, chunks=chunks)[:, 0]

    def _z_and_labels(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from training.data_stream import sample_labels

        z = torch.randn(self.opts.batch_gpu, self.m.G.config.z_dim, generator=gen)
        c = sample_labels(self.dataset, self.opts.batch_gpu, gen)
        return to_device(z, self.dev), to_device(c, self.dev)

    def _fakes_forward(self, z: torch.Tensor):
        """``G(z, update_w_avg=True)`` for the D step: eager, or replayed from a CUDA graph (``g_cuda_graphs``)."""
        if self.opts.g_cuda_graphs and self.dev.type == "cuda" and self._fakes_graph is None:
            from core.cuda_graphs import graphed_generator_no_grad

            try:
                self._fakes_graph = graphed_generator_no_grad(self.m.G, tuple(z.shape), update_w_avg=True)
            except RuntimeError as exc:  # e.g. a driver that refuses the capture: same maths without the graph
                self._fakes_graph = False
                cause = f"; caused by: {exc.__context__}" if exc.__context__ is not None else ""
                self.notes.append(f"{GRAPH_FALLBACK_NOTE} ({exc}{cause})")
        if self._fakes_graph:
            return self._fakes_graph(z)
        return self.m.G(z, update_w_avg=True)

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
                out = self._fakes_forward(z)
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
# logged once when g_cuda_graphs could not capture the D step's generator forward (bench.train_speed reads it)
GRAPH_FALLBACK_NOTE = "g_cuda_graphs: the D step's generator forward runs eagerly"


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
