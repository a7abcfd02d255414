"""The one inversion pipeline (inversion/pipeline.py): event order and types, cancel, failures as data, report."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
import torch

from inversion.latent_search import LatentConfig
from inversion.objective import LossNetworks, LossWeights
from inversion.photos import photo_from_array
from inversion.pipeline import (
    Failed, Finished, InversionSettings, LatentResult, StageFinished, StageStarted, StepDone, TuningResult,
    build_report, latent_events, run_inversion, tuning_events,
)
from inversion.pivotal_tuning import TuningConfig
from inversion.preprocess import PreprocessConfig

MSE = LossWeights(id=0.0, mse=1.0, lpips=0.0)


def _settings(steps: int = 3, tune_steps: int = 2, publish_every: int = 0, **net) -> InversionSettings:
    return InversionSettings(
        preprocess=PreprocessConfig(resolution=32),
        latent=LatentConfig(steps=steps, batch_size=1, losses=MSE, preview_every=0),
        tuning=None if tune_steps == 0 else TuningConfig(steps=tune_steps, batch_size=1, losses=MSE,
                                                         locality_weight=0.0, preview_every=0),
        networks=LossNetworks(**net), publish_every=publish_every)


def _kinds(events) -> list[str]:
    return [f"{type(e).__name__}:{getattr(e, 'stage', '')}" for e in events]


@pytest.mark.slow
def test_whole_run_yields_typed_events_in_order(tiny_G, astronaut):
    events = list(run_inversion(tiny_G, [photo_from_array(astronaut, "astronaut")], _settings(publish_every=2)))
    kinds = _kinds(events)
    assert kinds == (["StageStarted:preprocess", "StepDone:preprocess", "StageFinished:preprocess",
                      "StageStarted:latent"] + ["StepDone:latent"] * 3 + ["StageFinished:latent",
                      "StageStarted:tuning"] + ["StepDone:tuning"] * 2 + ["StageFinished:tuning", "Finished:"])
    steps = [e for e in events if isinstance(e, StepDone) and e.stage == "latent"]
    assert [s.step for s in steps] == [1, 2, 3] and all(s.total == 3 for s in steps)
    assert set(steps[0].losses) >= {"total", "mse"} and steps[0].seconds >= 0
    assert [s.latent is not None for s in steps] == [False, True, True]  # every 2nd and the last
    tune = [e for e in events if isinstance(e, StepDone) and e.stage == "tuning"]
    assert [s.generator is not None for s in tune] == [False, True]
    with pytest.raises(dataclasses.FrozenInstanceError):
        steps[0].step = 7  # type: ignore[misc]
    with pytest.raises(TypeError):
        steps[0].losses["mse"] = 0.0  # type: ignore[index]
    result = events[-1].result
    assert isinstance(result.latent, LatentResult) and isinstance(result.tuning, TuningResult)
    assert result.latent.steps_done == 3 and not result.latent.cancelled and result.names == ("astronaut",)
    assert result.latent.history["step"] == (1.0, 2.0, 3.0)
    assert torch.equal(result.latent.ws, steps[-1].latent)
    assert result.tuning.generator is not tiny_G and not result.tuning.generator.training
    report = build_report(result, _settings(), model="tiny.pkl", extra={"who": "test"})
    json.dumps(report)  # JSON-able as is
    assert report["stage1"]["steps_done"] == 3 and report["stage2"]["total_steps"] == 2
    assert report["stage1"]["history"]["mse"] == list(result.latent.history["mse"])
    assert report["timings"]["total"] == pytest.approx(sum(report["timings"][k] for k in
                                                           ("preprocess", "stage1", "stage2")))
    assert report["settings"]["latent"]["steps"] == 3 and report["who"] == "test"
    with pytest.raises(ValueError, match="stage1"):
        build_report(result, _settings(), model="x", extra={"stage1": 0})


def test_cancel_finishes_the_stage_and_starts_no_other(tiny_G, tiny_target):
    cancel = threading.Event()
    settings = _settings(steps=50)
    seen = []
    for ev in latent_events(tiny_G, tiny_target, settings, cancel):
        seen.append(ev)
        if isinstance(ev, StepDone) and ev.step == 2:
            cancel.set()
    assert _kinds(seen) == ["StageStarted:latent", "StepDone:latent", "StepDone:latent", "StepDone:latent",
                            "StageFinished:latent"]
    assert seen[-2].latent is not None  # stopped between publications: where it got to is published
    done = seen[-1]
    assert done.cancelled and done.result.steps_done == 2 and done.result.total_steps == 50
    tuned = list(tuning_events(tiny_G, tiny_target, done.result, settings, cancel))
    assert _kinds(tuned) == ["StageStarted:tuning", "StageFinished:tuning"]
    assert tuned[-1].result is None and tuned[-1].cancelled


def test_failures_are_data(tiny_G, tmp_path, monkeypatch):
    wall = photo_from_array(torch.full((64, 64, 3), 128, dtype=torch.uint8).numpy(), "wall")
    events = list(run_inversion(tiny_G, [wall], _settings()))
    assert isinstance(events[-1], Failed) and events[-1].stage == "preprocess"
    assert "no usable photo" in events[-1].message and "wall: no face found" in events[-1].message
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    lpips = dataclasses.replace(_settings(offline=True),
                                latent=LatentConfig(steps=1, losses=LossWeights(0.0, 1.0, 1.0)))
    events = list(run_inversion(tiny_G, [wall], lpips))
    assert len(events) == 1 and isinstance(events[0], Failed)  # before any work
    assert "alexnet-owt-7be5be79.pth" in events[0].message
