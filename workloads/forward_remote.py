"""The seed's forward pass as remote functions: one task per input vector.

A remote function pushes a vector through a list of weight matrices, ReLU
(`np.maximum(x, 0)`) after each, and returns `np.sum(x)`. Weights for the layers
[input_size] + layers, normal (`randn`), from `np.random.default_rng(seed)`; input i from
`np.random.default_rng([seed, i])`. The result records the cluster's CPUs (total and
available before the run) and alive nodes, which the seed printed.

Where this differs from the seed: the weights go into the object store once (`ray.put`,
timed apart as `put_s`) and every task gets the reference, rather than each call carrying its
own copy; each task also returns the IP of its node, for `per_node`.

`python -m workloads forward_remote --set inputs=20 --set layers=1000,1000,1000,1000`
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import ray

from workloads import _common

NAME = "forward_remote"
CHOICES: dict[str, tuple[str, ...]] = {}


def make_weights(input_size: int, layers: Sequence[int], seed: int) -> list[np.ndarray]:
    """One matrix per layer: (input_size, layers[0]), (layers[0], layers[1]), ..."""
    rng = np.random.default_rng(seed)
    sizes = [input_size, *layers]
    return [rng.standard_normal((a, b)) for a, b in itertools.pairwise(sizes)]


def make_input(seed: int, index: int, input_size: int) -> np.ndarray:
    return np.random.default_rng([seed, index]).standard_normal(input_size)


def forward(x: np.ndarray, weights: Sequence[np.ndarray]) -> float:
    for w in weights:
        x = np.maximum(np.dot(x, w), 0)
    return float(np.sum(x))


@ray.remote
def forward_task(x: np.ndarray, weights: Sequence[np.ndarray]) -> tuple[float, str]:
    return forward(x, weights), ray.util.get_node_ip_address()


def check(params: dict[str, Any]) -> None:
    """ValueError for parameters run() would refuse (also checked before submission)."""
    inputs, input_size, layers = params["inputs"], params["input_size"], list(params["layers"])
    if inputs < 0:
        raise ValueError(f"inputs must be >= 0, got {inputs}")
    if input_size < 1 or not layers or min(layers) < 1:
        raise ValueError(
            f"input_size and every layer must be >= 1 (and layers not empty), "
            f"got input_size={input_size}, layers={layers}"
        )


def run(
    inputs: int = 20,
    input_size: int = 100,
    layers: Sequence[int] = (1000, 1000, 1000, 1000),
    seed: int = 0,
    progress: _common.ProgressFn | None = None,
) -> dict[str, Any]:
    """One task per input vector. The result dict of docs/reports.md plus `put_s` and the
    cluster's CPUs and nodes."""
    layers = [int(n) for n in layers]
    params = {"inputs": inputs, "input_size": input_size, "layers": layers, "seed": seed}
    check(params)
    info = _common.cluster_info()
    weights = make_weights(input_size, layers, seed)
    xs = [make_input(seed, i, input_size) for i in range(inputs)]
    t0 = time.perf_counter()
    weights_ref = ray.put(weights)
    start = time.perf_counter()
    refs = [forward_task.remote(x, weights_ref) for x in xs]
    results = _common.wait_all(refs, _common.Progress(progress, inputs))
    wall = time.perf_counter() - start
    per_node: dict[str, int] = {}
    for _, ip in results:
        per_node[ip] = per_node.get(ip, 0) + 1
    return _common.result(
        NAME,
        params,
        wall_s=wall,
        tasks=inputs,
        per_node=per_node,
        outputs=[value for value, _ in results],
        put_s=start - t0,
        **info,
    )
