"""GeneratorConfig validation (core.generator_limits): every field has a rule, bad values name their field,
the parameter count is computed without building, and weights are compared with the config before a real
build."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.generator import PRESETS, Generator, GeneratorConfig, check_state_dict, count_parameters
from core.generator_limits import CHOICES, FLOAT_RANGES, INT_RANGES, MAX_PARAMETERS, TUPLE_RANGES


def meta_count(config: GeneratorConfig) -> int:
    with torch.device("meta"):
        return count_parameters(Generator(config))


def test_every_field_has_a_rule():
    fields = {f.name for f in dataclasses.fields(GeneratorConfig)}
    ruled = set(INT_RANGES) | set(TUPLE_RANGES) | set(FLOAT_RANGES) | set(CHOICES)
    assert fields == ruled, f"fields without a rule: {fields - ruled}; rules without a field: {ruled - fields}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_count_of_the_presets_equals_a_build(name):
    assert PRESETS[name].parameter_count == meta_count(PRESETS[name])
    assert PRESETS[name].state_bytes > 4 * PRESETS[name].parameter_count


@settings(max_examples=40, deadline=None)
@given(width_per_head=st.integers(1, 16), heads=st.sampled_from([1, 2, 4]), points=st.integers(1, 64),
       first=st.integers(1, 4), mlp=st.integers(1, 4), levels=st.integers(1, 4), ratio=st.integers(1, 4),
       ch=st.integers(1, 48), z=st.integers(1, 32), w=st.integers(1, 32), layers=st.integers(1, 4),
       pe=st.integers(1, 16))
def test_parameter_count_equals_a_build_for_random_configs(width_per_head, heads, points, first, mlp, levels,
                                                           ratio, ch, z, w, layers, pe):
    width = 2 * width_per_head * heads
    c = GeneratorConfig(resolution=64, num_points=points, width=width, heads=heads, num_first_blocks=first,
                        mlp_ratio=mlp, level_channels=tuple(max(1, ch >> i) for i in range(levels)),
                        upsample_ratios=(1,) + (ratio,) * (levels - 1), z_dim=z, w_dim=w, mapping_layers=layers,
                        pe_table_res=pe)
    assert c.parameter_count == meta_count(c)


BAD = [("resolution", 48), ("resolution", 2**40), ("num_points", 0), ("num_points", 10**9), ("width", 4096),
       ("width", 6), ("width", True), ("width", "512"), ("heads", 0), ("num_first_blocks", 10**6),
       ("mlp_ratio", 0), ("level_channels", ()), ("level_channels", (16,) * 11), ("level_channels", (0, 1, 1)),
       ("level_channels", 5), ("upsample_ratios", (2, 4, 4)), ("upsample_ratios", (1, 4)), ("z_dim", -1),
       ("w_dim", 1.5), ("mapping_layers", 10**6), ("mapping_lr_mul", 0.0), ("w_avg_beta", float("nan")),
       ("w_avg_beta", 2.0), ("ws_layout", "x"), ("initial_anchor_log_scale", float("inf")),
       ("official_pe_lookup", 1), ("pe_table_res", 10**5), ("level0_max_log_scale", "a"),
       ("split_min_scale_value", -1.0), ("split_ratio_value", float("nan"))]


@pytest.mark.parametrize("field, value", BAD, ids=[f"{f}={v!r}"[:40] for f, v in BAD])
def test_a_bad_value_is_refused_naming_its_field(field, value):
    other = {"upsample_ratios": "level_channels", "level_channels": "upsample_ratios"}
    with pytest.raises(ValueError, match=f"({field}|{other.get(field, field)})") as info:
        GeneratorConfig.from_dict({**PRESETS["tiny"].to_dict(), field: value})
    assert str(info.value).startswith("invalid GeneratorConfig")


def test_totals_are_bounded_before_anything_is_built():
    with pytest.raises(ValueError, match="Gaussians"):
        GeneratorConfig(level_channels=(16,) * 8, upsample_ratios=(1,) + (16,) * 7)
    with pytest.raises(ValueError, match=f"over the limit of {MAX_PARAMETERS:,}"):
        GeneratorConfig(width=2048, heads=8, mlp_ratio=16, num_first_blocks=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(GeneratorConfig)]),
                       st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                                 st.text(max_size=5), st.lists(st.integers(-3, 10**7), max_size=12)), max_size=6))
def test_any_values_give_a_config_or_a_value_error(changes):
    try:
        c = GeneratorConfig.from_dict({**PRESETS["tiny"].to_dict(), **changes})
    except ValueError:
        return
    assert c.parameter_count <= MAX_PARAMETERS and math.isfinite(c.w_avg_beta)


def test_weights_are_compared_with_the_config_without_building_it():
    c = PRESETS["cgs512"]
    with pytest.raises(ValueError, match=r"missing: .*xyz_const"):
        check_state_dict(c, {})
    tiny = PRESETS["tiny"]
    state = Generator(tiny).state_dict()
    check_state_dict(tiny, state)
    state["xyz_const"] = torch.zeros(3, 3)
    state["extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected: extra; wrong shapes: xyz_const \[3, 3\] \(expected \[64, 3\]\)"):
        check_state_dict(tiny, state)
