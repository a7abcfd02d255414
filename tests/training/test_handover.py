"""training/handover.py and its CLI (tools/snapshot_handover.py compact / expand): a run carried between
sessions through the repository, in float16 without G_ema and Adam's moments, and resumed from it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import Snapshot
from core.runs import latest_snapshot, snapshot_files
from core.snapshots import load_snapshot
from training import handover
from training.loop import train
from test_training_loop import dataset, restore_determinism, tiny_options  # noqa: F401

_spec = importlib.util.spec_from_file_location("snapshot_handover_cli", Path(__file__).parents[2] / "tools" /
                                               "snapshot_handover.py")
cli = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cli
_spec.loader.exec_module(cli)


def full_snapshot() -> Snapshot:
    """A training snapshot with two networks, a G_ema, Adam states (beta1 = 0: no exp_avg) and counters."""
    g = torch.Generator().manual_seed(0)
    G = {"w": torch.randn(300, 300, generator=g),               # large, within +-8: float16
         "mapping": torch.randn(70000, generator=g) * 100,     # large values (lr_mul 0.01): stays float32
         "bias": torch.randn(4, generator=g),                  # small: stays float32
         "count": torch.tensor([3])}
    D = {"w": torch.randn(70000, generator=g) * 1e-3}
    adam = {"state": {0: {"step": torch.tensor(7.0), "exp_avg_sq": torch.rand(300, 300, generator=g)}},
            "param_groups": [{"lr": 0.002, "betas": [0.0, 0.99], "params": [0]}]}
    return Snapshot(kind="training", generator_config={"preset": "tiny"},
                    modules={"G": G, "G_ema": {k: v.clone() for k, v in G.items()}, "D": D},
                    optimizers={"G": adam, "D": {"state": {}, "param_groups": adam["param_groups"]}},
                    training={"progress": {"cur_nimg": 8000, "step": 7, "samples_drawn": 8000}, "rng": [{}]},
                    metadata={"kimg": 8.0})


def test_compact_keeps_g_and_d_with_large_tensors_in_float16_and_drops_the_rest():
    full = full_snapshot()
    small = handover.compact(full)
    assert set(small.modules) == {"G", "D"} and handover.is_compact(small)
    dtypes = {f"{m}.{k}": v.dtype for m in small.modules for k, v in small.modules[m].items()}
    assert dtypes == {"G.w": torch.float16, "G.mapping": torch.float32, "G.bias": torch.float32,
                      "G.count": torch.int64, "D.w": torch.float16}
    assert torch.equal(small.modules["G"]["mapping"], full.modules["G"]["mapping"])
    assert (small.modules["G"]["w"].float() - full.modules["G"]["w"]).abs().max() <= 2**-9  # half an ulp below 8
    assert small.optimizers["G"]["state"][0] == {"exp_avg_sq_shape": [300, 300],
                                                 "step": full.optimizers["G"]["state"][0]["step"]}
    assert small.training["progress"] == full.training["progress"]
    assert small.training[handover.HANDOVER_KEY]["from_kimg"] == 8.0
    assert "G_ema" in full.modules and handover.HANDOVER_KEY not in full.training  # the input is untouched
    assert handover.describe(full.training) is None and "8.0 kimg" in handover.describe(small.training)
    with pytest.raises(ValueError, match="already a compact"):
        handover.compact(small)
    with pytest.raises(ValueError, match="no training state"):
        handover.compact(Snapshot(kind="generator", generator_config={}, modules={"G_ema": {}}))
    amsgrad = full_snapshot()
    amsgrad.optimizers["G"]["state"][0]["max_exp_avg_sq"] = torch.zeros(300, 300)
    with pytest.raises(ValueError, match="not a plain Adam state"):
        handover.compact(amsgrad)


def test_expand_rebuilds_a_full_snapshot_with_a_fresh_adam():
    big = handover.expand(handover.compact(full_snapshot()))
    assert set(big.modules) == {"G", "G_ema", "D"} and not handover.is_compact(big)
    assert big.modules["G"]["w"].dtype == torch.float32
    assert all(torch.equal(big.modules["G_ema"][k], big.modules["G"][k]) for k in big.modules["G"])
    s = big.optimizers["G"]["state"][0]
    assert float(s["step"]) == 0.0 and s["exp_avg_sq"].shape == (300, 300) and not s["exp_avg_sq"].any()
    assert big.training[handover.HANDOVER_KEY]["dropped"] == ["G_ema", "exp_avg", "exp_avg_sq"]
    with pytest.raises(ValueError, match="not a compact"):
        handover.expand(big)


def test_an_expanded_adam_state_steps_exactly_like_a_fresh_adam():
    """Step 0 with zero moments is Adam's state before its first step: the same update to the last bit."""
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=0.01, betas=(0.0, 0.99))
    opt_b = torch.optim.Adam(b.parameters(), lr=0.01, betas=(0.0, 0.99))
    (b(torch.randn(2, 3)).square().sum()).backward()
    opt_b.step()  # b's optimizer has a history now ...
    b.load_state_dict(a.state_dict())
    sd = opt_b.state_dict()
    sd["state"] = {i: {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                   for i, p in enumerate(b.parameters())}
    opt_b.load_state_dict(sd)  # ... replaced by what expand() writes (exp_avg from expand_optimizer_state)
    x = torch.randn(2, 3)
    for net, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        net(x).square().sum().backward()
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_a_run_resumes_from_a_compact_hand_over(dataset, tmp_path):  # noqa: F811
    """Stop a tiny run, compact its snapshot (the part that is committed), expand it "elsewhere" and resume
    with ``python -m training --resume``: the run continues from the hand-over's kimg to the end."""
    from training.__main__ import main

    first = train(tiny_options(dataset, tmp_path / "machine1", snapshot_max_part_mib=0.25, stop_after_minutes=0.0),
                  progress=False)
    snap = latest_snapshot(first)
    small = ["--max-part-mib", "0.05"]  # sharded, as the real hand-over (15 MiB parts)
    assert cli.main(["compact", str(snap), str(tmp_path / "repo"), *small]) == 0
    compact_index = tmp_path / "repo" / snap.name
    full_bytes = sum(f.stat().st_size for f in snapshot_files(snap))
    compact_bytes = sum(f.stat().st_size for f in snapshot_files(compact_index))
    assert compact_bytes < 0.5 * full_bytes
    assert cli.main(["compact", str(snap), str(tmp_path / "repo")]) == 1  # never replaces a file
    # what a lease does on the GPU machine: `out --compact-dir` hands out the compact form (reused once written)
    # a compact form that fits one file (the tiny run's) is written by the first `out` and travels whole
    n, calls = cli.out_call(first, tmp_path / "single", 0, compact_dir=tmp_path / "fresh")
    assert (n, calls) == (1, 1) and cli.out_call(first, tmp_path / "single2", 0, compact_dir=tmp_path / "fresh") == (1, 1)
    whole = cli.gather(tmp_path / "single_back", [tmp_path / "single"])
    assert handover.is_compact(load_snapshot(whole))
    _, calls = cli.out_call(first, tmp_path / "ret0", 0, compact_dir=tmp_path / "repo")
    for k in range(1, calls):
        cli.out_call(first, tmp_path / f"ret{k}", k, compact_dir=tmp_path / "repo")
    assert cli.gather(tmp_path / "back", [tmp_path / f"ret{k}" for k in range(calls)]).name == snap.name
    assert cli.main(["expand", str(compact_index), str(tmp_path / "machine2"), *small]) == 0
    expanded = tmp_path / "machine2" / snap.name
    assert load_snapshot(expanded).training[handover.HANDOVER_KEY]["from_kimg"] == 0.004
    assert main(["--resume", str(expanded), "--outdir", str(tmp_path / "runs2")]) == 0
    run = next((tmp_path / "runs2").iterdir())
    log = (run / "log.txt").read_text()
    assert "resuming" in log and "at 0.004 kimg" in log and "done: 0.016 kimg" in log
    assert "resumed from a compact hand-over made at 0.004 kimg" in log
    end = load_snapshot(latest_snapshot(run))
    assert end.training["progress"]["cur_nimg"] == 16
    assert all(bool(torch.isfinite(v).all()) for v in end.modules["G"].values() if v.is_floating_point())
