"""Multi-GPU rank failure, on the CPU with 2 gloo ranks: when one rank raises, the other (blocked in a
collective that will never complete) stops within seconds, and the error lands in the run's error.txt and
status.json; nothing waits for the process group's timeout."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import torch

from training.distributed import EXIT_PEER_FAILED

from test_training_loop import dataset, tiny_options  # noqa: F401

TIMEOUT_MIN = 10  # the process group's timeout (NCCL's default is 10 minutes): the test must not wait for it


def _rank(rank: int, world: int, store: str, data: str, out: str, report: str) -> None:
    from training.distributed import DistInfo
    from training.loop import Trainer, train

    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                                         timeout=datetime.timedelta(minutes=TIMEOUT_MIN))
    torch.set_num_threads(1)
    if rank == 1:
        original = Trainer.step

        def step(self, step, cur_nimg, reals):
            if step == 1:  # rank 0 is already waiting for this step's gradients
                Path(report).write_text(json.dumps({"time": time.time()}))
                raise RuntimeError("simulated failure on rank 1 (out of memory, say)")
            return original(self, step, cur_nimg, reals)

        Trainer.step = step
    opts = tiny_options(Path(data), Path(out), deterministic=False)
    try:
        train(opts, info=DistInfo(rank, world, torch.device("cpu")), progress=False)
    except RuntimeError:
        time.sleep(120)  # stay alive like a wedged NCCL peer: rank 0 must not depend on this process exiting


def test_one_failing_rank_stops_every_rank_within_seconds(dataset, tmp_path):  # noqa: F811
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    out, report = tmp_path / "runs", tmp_path / "rank1.json"
    procs = [ctx.Process(target=_rank, args=(r, 2, str(tmp_path / "store"), str(dataset), str(out), str(report)))
             for r in range(2)]
    for p in procs:
        p.start()
    try:
        procs[0].join(timeout=300)
        ended = time.time()
        assert procs[0].exitcode == EXIT_PEER_FAILED, f"rank 0 did not stop (exit code {procs[0].exitcode})"
        failed_at = json.loads(report.read_text())["time"]
        assert ended - failed_at < 20, f"rank 0 took {ended - failed_at:.1f} s to stop"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
    run = next(out.iterdir())
    error = (run / "error.txt").read_text()
    assert "rank 1: RuntimeError: simulated failure on rank 1" in error
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "rank 1" in status["error"]
    assert "ERROR: rank 1: RuntimeError" in (run / "log.txt").read_text()
