"""fake_nn with dynamic dispatch: the same network, inputs and parameters, plus `inflight`.

Not in the seed: its answer to the seed's own finding that round robin lets the slowest node
set the pace on unequal machines. Each actor keeps up to `inflight` batches outstanding; when
one finishes (ray.wait), that actor gets the next batch, so a fast node takes more batches.
Outputs are reassembled in batch order: for the same parameters the checksum equals
fake_nn's. See workloads/fake_nn.py for the network, the inputs and `placement`.

`retries` (0, as the seed: a lost actor fails the run) lets a lost node cost time instead of
the run: each actor is created with `max_restarts=retries` (Ray starts it again, on another
node when its own is gone, and it builds the same network from the seed) and
`max_task_retries=retries` (the calls it had not answered are sent again), so the checksum is
unchanged. `per_node` and `actor_nodes` still count where each actor first started.

`python -m workloads fake_nn_balanced --set preset=small --set inflight=2 --set retries=3`
"""

from __future__ import annotations

import time
from typing import Any

import ray

from workloads import _common, fake_nn
from workloads.fake_nn import CHOICES as CHOICES
from workloads.fake_nn import (
    batch_inputs,
    batch_sizes,
    checked_params,
    input_dim,
    nn_result,
    start_actors,
    stop_actors,
)

NAME = "fake_nn_balanced"


def check(params: dict[str, Any]) -> None:
    """ValueError for parameters run() would refuse (also checked before submission)."""
    fake_nn.check(params)
    if params["inflight"] < 1:
        raise ValueError(f"inflight must be >= 1, got {params['inflight']}")
    if params["retries"] < 0:
        raise ValueError(f"retries must be >= 0, got {params['retries']}")


def run(
    preset: str = "large",
    task_num: int = 100000,
    batch_size: int = 10,
    actors: int = 10,
    seed: int = 0,
    placement: str = "spread",
    weight_scale: float = 1.0,
    inflight: int = 2,
    retries: int = 0,
    progress: _common.ProgressFn | None = None,
) -> dict[str, Any]:
    """Up to `inflight` batches per actor at a time; the next batch goes to whichever actor
    finished one; a lost actor restarted and its calls retried up to `retries` times. Result
    keys as fake_nn's."""
    params = checked_params(preset, task_num, batch_size, actors, seed, placement, weight_scale)
    params.update(inflight=inflight, retries=retries)
    check(params)
    sizes = batch_sizes(task_num, batch_size)
    dim = input_dim(preset)
    total = len(sizes)
    refs: list[Any] = [None] * total
    owner: dict[Any, int] = {}  # outstanding ref -> the actor running it
    per_node: dict[str, int] = {}
    report = _common.Progress(progress, total)
    info = _common.cluster_info()
    t0 = time.perf_counter()
    handles, ips = start_actors(preset, actors, seed, placement, weight_scale, retries)
    try:
        start = time.perf_counter()
        next_batch = 0

        def submit(actor: int) -> None:
            nonlocal next_batch
            i = next_batch
            next_batch += 1
            ref = handles[actor].predict.remote(batch_inputs(seed, i, sizes[i], dim))
            refs[i] = ref
            owner[ref] = actor
            per_node[ips[actor]] = per_node.get(ips[actor], 0) + 1

        # One batch to each actor in turn, `inflight` rounds: every actor starts at once.
        for _ in range(inflight):
            for actor in range(actors):
                if next_batch < total:
                    submit(actor)
        done = 0
        if total == 0:
            report(0)
        while owner:
            ready, _ = ray.wait(list(owner), num_returns=1)
            for ref in ready:
                actor = owner.pop(ref)
                done += 1
                report(done)
                if next_batch < total:
                    submit(actor)
        outputs = ray.get(refs)
        wall = time.perf_counter() - start
    finally:
        stop_actors(handles)
    return nn_result(NAME, params, wall, per_node, outputs, start - t0, ips, info)
