"""bench/train_speed.py without a GPU: which figure a run records, and which ticks meet a new blur width."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from bench.train_speed import blur_events, figure_suffix, variant
from training.options import TrainOptions
from training.recipes import CPU128


def flags(**kw) -> argparse.Namespace:
    base = dict(legacy=False, precision=None, d_bf16_blocks=None, channels_last=None, d_channel_base=None,
                d_blur=None, g_cuda_graphs=None)
    return argparse.Namespace(**{**base, **kw})


def test_the_recipe_itself_records_the_plain_figure_name():
    recipe = TrainOptions(data="", **CPU128.overrides())
    assert variant(flags()) == {}
    assert figure_suffix(TrainOptions(data="", **{**CPU128.overrides(), **variant(flags())}), recipe) == ""


@pytest.mark.parametrize("kw, suffix", [
    (dict(legacy=True), "_legacy"),                                   # the D before the speed work
    (dict(d_channel_base=32768), "_bf16d"),                           # bf16 blocks + NHWC at the full width
    (dict(d_bf16_blocks=0, channels_last=False, d_channel_base=32768), "_fp32d"),  # the recipe until 2026-12-02
    (dict(channels_last=False), "_bf16d_nchw_cb16384"),
    (dict(d_bf16_blocks=2), "_bf16d2_cb16384"),
    (dict(precision="bf16"), "_bf16_bf16d_cb16384"),
    (dict(d_blur="slices"), "_dslices"),                              # the recipe, blurs as slices
    (dict(d_blur="conv"), "_dconv"),                                  # the recipe, blurs as depthwise convs
    (dict(d_blur="slices", d_channel_base=32768), "_bf16d_dslices"),
    (dict(legacy=True, d_blur="slices"), "_legacy_dslices"),
    (dict(legacy=True, d_blur="matmul"), "_legacy_dmatmul"),          # legacy means conv blurs, whatever the base
    (dict(g_cuda_graphs=True), "_graphs"),                            # the recipe, D-step G forward from a graph
    (dict(g_cuda_graphs=True, d_channel_base=32768), "_bf16d_graphs"),
])
def test_a_variant_of_cpu128_is_named_by_its_own_d(kw, suffix):
    recipe = TrainOptions(data="", **CPU128.overrides())
    opts = TrainOptions(data="", **{**CPU128.overrides(), **variant(flags(**kw))})
    assert figure_suffix(opts, recipe) == suffix


def test_cgs_names_stay_as_recorded_before():
    cgs = TrainOptions(data="", preset="cgs512", batch=8, batch_gpu=8)
    assert figure_suffix(cgs, cgs) == ""
    assert figure_suffix(dataclasses.replace(cgs, d_bf16_blocks=4, channels_last=True), cgs) == "_bf16d"
    assert figure_suffix(dataclasses.replace(cgs, d_channel_base=16384), cgs) == "_cb16384"
    assert figure_suffix(dataclasses.replace(cgs, d_bf16_blocks=4, channels_last=True, d_blur="conv"), cgs) == \
        "_bf16d_dconv"
    assert figure_suffix(dataclasses.replace(cgs, d_bf16_blocks=4, channels_last=True, g_cuda_graphs=True), cgs) == \
        "_bf16d_graphs"


def test_legacy_takes_no_bf16_blocks():
    with pytest.raises(SystemExit, match="legacy"):
        variant(flags(legacy=True, d_bf16_blocks=4))


def test_blur_events_follow_the_kernel_length():
    # cpu128: sigma = 10 (1 - 32 s / 40000) at step s, radius floor(3 sigma) = floor(30 - 0.024 s): 30 at s = 0,
    # 29 from s = 1, 28 from s = 42, 27 from 84, 26 from 125, 25 from 167. Ticks of 16 steps, R1 at s % 16 == 0:
    # the G/D steps meet a new length in ticks 0, 2, 5, 7, 10; the next R1 (first step of the next tick, or of the
    # same tick at s = 0) in ticks 0, 1, 3, 6, 8, 11.
    opts = TrainOptions(data="", **CPU128.overrides())
    assert blur_events(opts, 12, 16) == ["gd+r1", "r1", "gd", "r1", "", "gd", "r1", "gd", "r1", "", "gd", "r1"]
    assert blur_events(dataclasses.replace(opts, blur_fade_kimg=0.0), 12, 16) == [""] * 12
    assert blur_events(dataclasses.replace(opts, gamma=0.0), 4, 16) == ["gd", "", "gd", ""]


def test_blur_variants_change_only_the_blur(tmp_path):
    from bench.train_variants import VARIANTS, options_for

    recipe = options_for("cpu128", {}, tmp_path, tmp_path)
    assert options_for("cpu128", VARIANTS["bf16-cb16k-matmul"], tmp_path, tmp_path) == recipe  # the recipe now
    for name, blur in (("bf16-cb16k", "conv"), ("bf16-cb16k-slices", "slices"), ("bf16-cb16k-slices16", "slices_bf16")):
        opts = options_for("cpu128", VARIANTS[name], tmp_path, tmp_path)
        assert opts.d_blur == blur and dataclasses.replace(opts, d_blur="matmul") == recipe


@pytest.mark.parametrize("recipe, variant, name", [
    ("cpu128", "bf16-cb16k-matmul", "train_s_per_kimg_cpu128"),       # the recipe itself
    ("cpu128", "bf16-cb16k", "train_s_per_kimg_cpu128_dconv"),        # its D with conv blurs
    ("cpu128", "bf16", "train_s_per_kimg_cpu128_bf16d_dconv"),
    ("cpu128", "legacy", "train_s_per_kimg_cpu128_legacy"),
    ("cgs512", "bf16-matmul", "train_gpu_s_per_kimg_512_bf16d"),
    ("cgs512", "bf16", "train_gpu_s_per_kimg_512_bf16d_dconv"),
])
def test_profile_reports_record_under_the_speed_bench_names(recipe, variant, name):
    from bench.train_profile import figure_name

    assert figure_name(recipe, variant)[0] == name


def test_phase_clock_splits_phase_times_by_tick():
    """bench.train_profile.PhaseClock: per tick, ms per step of each phase (which phase grows during a run)."""
    from bench.train_profile import PhaseClock

    from bench.train_profile import LOOP_PHASE

    class Event:  # stands in for a CUDA event: elapsed_time is the difference of two times in ms
        def __init__(self, t):
            self.t = t

        def elapsed_time(self, other):
            return other.t - self.t

    clock = PhaseClock()
    clock.marks = [(LOOP_PHASE, Event(0.0), 16), ("G", Event(2.0), 16), ("D", Event(5.0), 16),
                   (LOOP_PHASE, Event(6.0), 17), ("G", Event(10.0), 17),
                   (LOOP_PHASE, Event(42.0), 32), ("D", Event(43.0), 32), (LOOP_PHASE, Event(44.0), 33),
                   ("G", Event(50.0), 33)]
    # the loop interval that ends as step 32 starts (the end of tick 1: its wait and log) belongs to step 17
    assert clock._intervals()[4] == (LOOP_PHASE, 32.0, 17)
    assert clock.per_tick(16) == [{"G": (2 + 4) / 16, "D": 3 / 16, LOOP_PHASE: (1 + 32) / 16},
                                  {"D": 1 / 16, LOOP_PHASE: 1 / 16, "G": 6 / 16}]
    assert clock.per_step(2) == {"G": 6.0, "D": 2.0, LOOP_PHASE: 17.0}
    # the events are read once; a new mark is read again
    clock.marks[1] = ("G", None, 16)  # reading this one again would fail
    assert clock.per_step(2) == {"G": 6.0, "D": 2.0, LOOP_PHASE: 17.0}
    clock.marks = clock.marks[:1] + [("G", Event(2.0), 16)] + clock.marks[2:] + [("D", Event(51.0), 33)]
    assert clock.per_step(2)["D"] == (3 + 1 + 1) / 2


def test_flops_are_counted_on_the_discriminator_the_trainer_builds():
    """bench.train_flops counts the D of training.trainer.discriminator_config (one owner), in float32."""
    import torch

    from bench.train_flops import recipe_step_flops
    from training.trainer import build_discriminator, discriminator_config

    opts = TrainOptions(data="", **{**CPU128.overrides(), "d_channel_base": 1024, "d_channel_max": 64})
    assert discriminator_config(opts, 32).num_autocast_blocks == opts.d_bf16_blocks > 0
    D = build_discriminator(opts, 32, torch.device("cpu"))
    assert D.config == discriminator_config(opts, 32)
    small = recipe_step_flops(opts, 32)
    wide = recipe_step_flops(dataclasses.replace(opts, d_channel_max=128), 32)
    assert 0 < small.d_d_step < wide.d_d_step  # the options reach the counted D
