"""The seed's "fake neural network" on actors, with round-robin dispatch.

The network: 3 dense layers, sigmoid after each; preset `large` has W1, W2, W3 of 1000x1000
and biases of 1000, preset `small` W1 1000x150, W2 150x150, W3 150x100 (biases to match).
Weights and biases are uniform in [0, 1) as the seed's `np.random.rand`. An actor holds one
network; `predict(inputs)` runs `forward` on each vector of a batch, one at a time, and
returns the list. `task_num` inputs go out in batches of `batch_size` (the last one may be
smaller); batch i goes to actor i % actors (round robin); then `ray.get` of all.

Where this differs from the seed, and why:
- Reproducible numbers. Every actor builds its network from `np.random.default_rng(seed)`, so
  all actors are identical replicas, and batch i's inputs come from
  `np.random.default_rng([seed, i])` on the driver: the outputs, and so the checksum, do not
  depend on the dispatch, the number of actors or the cluster.
- Placement. `placement="spread"` (the default) creates the actors with
  `scheduling_strategy="SPREAD"` so that every node gets actors; the seed left placement to
  Ray, which is `placement="default"`, where Ray may pack every actor on one node.
- Timing. `wall_s` runs from the first `predict` submitted to the last result, input
  generation included (the seed made its inputs in the submission loop too); creating the
  actors is timed apart, as `setup_s`.
- `weight_scale` (not in the seed; 1.0 is the seed) multiplies weights and biases. With 1.0
  every pre-activation is in the hundreds, so every output is exactly 1.0 whatever the seed
  (the work is the same, the numbers are not informative); 0.001 keeps the sigmoid in its
  live range, where the checksum depends on the seed.

`python -m workloads fake_nn --set preset=small --set task_num=10000`
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import ray

from workloads import _common

NAME = "fake_nn"
PRESETS: dict[str, tuple[tuple[int, int], ...]] = {
    "large": ((1000, 1000), (1000, 1000), (1000, 1000)),
    "small": ((1000, 150), (150, 150), (150, 100)),
}
PLACEMENTS = ("spread", "default")
CHOICES: dict[str, tuple[str, ...]] = {"preset": tuple(PRESETS), "placement": PLACEMENTS}

Network = list[tuple[np.ndarray, np.ndarray]]


def make_network(preset: str = "large", seed: int = 0, weight_scale: float = 1.0) -> Network:
    """[(W, b), ...] for the preset: W1, b1, W2, b2, W3, b3 drawn in that order, uniform in
    [0, 1) from default_rng(seed), times weight_scale."""
    rng = np.random.default_rng(seed)
    layers = []
    for shape in PRESETS[preset]:
        w = rng.random(shape)
        b = rng.random(shape[1])
        if weight_scale != 1.0:
            w, b = w * weight_scale, b * weight_scale
        layers.append((w, b))
    return layers


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def forward(network: Network, x: np.ndarray) -> np.ndarray:
    """One vector through every layer: x = sigmoid(x @ W + b)."""
    for w, b in network:
        x = sigmoid(np.dot(x, w) + b)
    return x


def input_dim(preset: str) -> int:
    return PRESETS[preset][0][0]


def batch_inputs(seed: int, index: int, size: int, dim: int) -> np.ndarray:
    """Batch `index`'s inputs: `size` vectors of `dim` floats in [0, 1) from
    default_rng([seed, index]), whoever asks and in whatever order."""
    return np.random.default_rng([seed, index]).random((size, dim))


def batch_sizes(task_num: int, batch_size: int) -> list[int]:
    """The size of each batch: `task_num` inputs, `batch_size` at a time."""
    n = math.ceil(task_num / batch_size)
    return [min(batch_size, task_num - i * batch_size) for i in range(n)]


@ray.remote
class FakeNN:
    """One network per actor, built on the actor (no weights travel). The actor also keeps
    what it did (`work()`): calls answered, seconds spent in them, and the wall-clock time
    (this node's clock) of its first call's start and its last call's end."""

    def __init__(self, preset: str, seed: int, weight_scale: float) -> None:
        self.network = make_network(preset, seed, weight_scale)
        self.done = _common.Work()

    def node_ip(self) -> str:
        return ray.util.get_node_ip_address()

    def predict(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self.done.call():
            return [forward(self.network, x) for x in inputs]

    def work(self) -> dict[str, Any]:
        return self.done.to_dict()


def check_params(
    preset: str, task_num: int, batch_size: int, actors: int, placement: str, weight_scale: float
) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    for key, value, least in (("task_num", task_num, 0), ("batch_size", batch_size, 1)):
        if value < least:
            raise ValueError(f"{key} must be >= {least}, got {value}")
    if actors < 1:
        raise ValueError(f"actors must be >= 1, got {actors}")
    if not math.isfinite(weight_scale):
        raise ValueError(f"weight_scale must be finite, got {weight_scale}")


def check(params: dict[str, Any]) -> None:
    """ValueError for parameters run() would refuse (also checked before submission)."""
    check_params(
        params["preset"],
        params["task_num"],
        params["batch_size"],
        params["actors"],
        params["placement"],
        params["weight_scale"],
    )


def checked_params(
    preset: str,
    task_num: int,
    batch_size: int,
    actors: int,
    seed: int,
    placement: str,
    weight_scale: float,
) -> dict[str, Any]:
    """The parameters as the result records them, after check_params."""
    check_params(preset, task_num, batch_size, actors, placement, weight_scale)
    return {
        "preset": preset,
        "task_num": task_num,
        "batch_size": batch_size,
        "actors": actors,
        "seed": seed,
        "placement": placement,
        "weight_scale": weight_scale,
    }


def nn_result(
    name: str,
    params: dict[str, Any],
    wall: float,
    per_node: dict[str, int],
    outputs: Sequence[Any],
    setup_s: float,
    ips: Sequence[str],
    info: dict[str, Any],
    node_work: dict[str, Any],
) -> dict[str, Any]:
    """The result of a fake_nn run (either dispatch): one batch is one call."""
    return _common.result(
        name,
        params,
        wall_s=wall,
        tasks=len(outputs),
        per_node=per_node,
        outputs=outputs,
        setup_s=setup_s,
        actor_nodes=count_by_node(ips),
        batches=len(outputs),
        dims=[list(shape) for shape in PRESETS[params["preset"]]],
        node_work=node_work,
        **info,
    )


def actor_options(placement: str, retries: int = 0) -> dict[str, Any]:
    """FakeNN.options(...) for the actors: SPREAD for placement="spread"; with `retries` (not
    in the seed, fake_nn_balanced's opt-in) an actor lost with its node or process is
    restarted up to `retries` times and each call lost with it is retried as often."""
    options: dict[str, Any] = {"scheduling_strategy": "SPREAD"} if placement == "spread" else {}
    if retries:
        options.update(max_restarts=retries, max_task_retries=retries)
    return options


def start_actors(
    preset: str, actors: int, seed: int, placement: str, weight_scale: float, retries: int = 0
) -> tuple[list[Any], list[str]]:
    """Create the actors and wait until each has built its network; (handles, node IPs)."""
    options = actor_options(placement, retries)
    handles = [FakeNN.options(**options).remote(preset, seed, weight_scale) for _ in range(actors)]
    try:
        ips = ray.get([h.node_ip.remote() for h in handles])
    except BaseException:
        stop_actors(handles)
        raise
    return handles, ips


def actors_work(handles: Sequence[Any], ips: Sequence[str], start_epoch: float) -> dict[str, Any]:
    """What each node's actors did, summed per node (_common.node_work); an actor that is
    gone (lost with its node) counts for nothing."""
    refs = [h.work.remote() for h in handles]  # asked at once: the waits overlap
    done = []
    for ref, ip in zip(refs, ips, strict=True):
        try:
            done.append((ip, ray.get(ref, timeout=30)))
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            continue
    return _common.node_work(done, start_epoch)


def stop_actors(handles: Sequence[Any]) -> None:
    for h in handles:
        ray.kill(h)


def count_by_node(ips: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ip in ips:
        counts[ip] = counts.get(ip, 0) + 1
    return counts


def run(
    preset: str = "large",
    task_num: int = 100000,
    batch_size: int = 10,
    actors: int = 10,
    seed: int = 0,
    placement: str = "spread",
    weight_scale: float = 1.0,
    progress: _common.ProgressFn | None = None,
) -> dict[str, Any]:
    """Round robin: batch i to actor i % actors, all submitted, then all gathered.

    The result dict of docs/reports.md plus `setup_s`, `actor_nodes` ({node_ip: actors}),
    `batches`, `dims`, `node_work` (per node: calls, busy time, first start and last end
    since the first submission) and the cluster's CPUs and nodes."""
    params = checked_params(preset, task_num, batch_size, actors, seed, placement, weight_scale)
    sizes = batch_sizes(task_num, batch_size)
    dim = input_dim(preset)
    info = _common.cluster_info()
    t0 = time.perf_counter()
    handles, ips = start_actors(preset, actors, seed, placement, weight_scale)
    try:
        start, start_epoch = time.perf_counter(), time.time()
        refs = [
            handles[i % actors].predict.remote(batch_inputs(seed, i, size, dim))
            for i, size in enumerate(sizes)
        ]
        outputs = _common.wait_all(refs, _common.Progress(progress, len(refs)))
        wall = time.perf_counter() - start
        work = actors_work(handles, ips, start_epoch)
    finally:
        stop_actors(handles)
    per_node = count_by_node([ips[i % actors] for i in range(len(refs))])
    return nn_result(NAME, params, wall, per_node, outputs, start - t0, ips, info, work)
