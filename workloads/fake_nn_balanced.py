"""fake_nn with dynamic dispatch: the same network, inputs and parameters, plus `inflight`.

Not in the seed: its answer to the seed's own finding that round robin lets the slowest node
set the pace on unequal machines. Each actor keeps up to `inflight` batches outstanding; when
one finishes (ray.wait), that actor gets the next batch, so a fast node takes more batches.
Outputs are reassembled in batch order: for the same parameters the checksum equals
fake_nn's. See workloads/fake_nn.py for the network, the inputs and `placement`.

`retries` (0, as the seed: a lost actor fails the run) lets a lost node cost time instead of
the run: a batch whose actor was lost goes to the actors still answering, up to `retries`
times per batch (each actor is also created with `max_restarts=retries` and
`max_task_retries=retries`, so calls in flight during a restart are sent again). Every batch
is computed from the seed, so the checksum is unchanged. `per_node` counts the batches each
node answered; `actor_nodes` where each actor first started.

`python -m workloads fake_nn_balanced --set preset=small --set inflight=2 --set retries=3`
"""

from __future__ import annotations

import collections
import time
from typing import Any

import ray

from workloads import _common, fake_nn
from workloads.fake_nn import CHOICES as CHOICES
from workloads.fake_nn import (
    actors_work,
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
    per_node: dict[str, int] = {}
    report = _common.Progress(progress, len(sizes))
    info = _common.cluster_info()
    t0 = time.perf_counter()
    handles, ips = start_actors(preset, actors, seed, placement, weight_scale, retries)
    try:
        start, start_epoch = time.perf_counter(), time.time()
        outputs = dispatch(handles, ips, sizes, seed, dim, inflight, retries, per_node, report)
        wall = time.perf_counter() - start
        work = actors_work(handles, ips, start_epoch)
    finally:
        stop_actors(handles)
    return nn_result(NAME, params, wall, per_node, outputs, start - t0, ips, info, work)


def dispatch(
    handles: list[Any],
    ips: list[str],
    sizes: list[int],
    seed: int,
    dim: int,
    inflight: int,
    retries: int,
    per_node: dict[str, int],
    report: _common.Progress,
) -> list[Any]:
    """Every batch's output, in batch order. Up to `inflight` batches per actor; the next one
    to whichever actor answered. A batch whose actor was lost (RayActorError: its node or
    process died) goes to the actors still answering, up to `retries` times per batch; the
    lost actor gets no more work in this run (Ray restarts it, max_restarts, but a call sent
    while its node is still going away fails at once). `per_node` counts the batches each
    node answered."""
    total = len(sizes)
    outputs: list[Any] = [None] * total
    waiting = collections.deque(range(total))  # batch indices not yet sent (or to send again)
    running: dict[Any, tuple[int, int]] = {}  # outstanding ref -> (batch, actor)
    attempts = [0] * total
    lost: set[int] = set()

    def submit(actor: int) -> None:
        i = waiting.popleft()
        ref = handles[actor].predict.remote(batch_inputs(seed, i, sizes[i], dim))
        running[ref] = (i, actor)

    # One batch to each actor in turn, `inflight` rounds: every actor starts at once.
    for _ in range(inflight):
        for actor in range(len(handles)):
            if waiting:
                submit(actor)
    done = 0
    if total == 0:
        report(0)
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            i, actor = running.pop(ref)
            try:
                outputs[i] = ray.get(ref)
            except ray.exceptions.RayActorError:
                attempts[i] += 1
                lost.add(actor)
                if attempts[i] > retries or len(lost) == len(handles):
                    raise
                waiting.appendleft(i)
                # Someone still answering takes it (the others send theirs on completion).
                healthy = [a for a in range(len(handles)) if a not in lost]
                busy = collections.Counter(a for _, a in running.values())
                submit(min(healthy, key=lambda a: busy[a]))
                continue
            per_node[ips[actor]] = per_node.get(ips[actor], 0) + 1
            done += 1
            report(done)
            if waiting and actor not in lost:
                submit(actor)
    return outputs
