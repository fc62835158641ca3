"""What every workload shares: the output protocol, the checksum, progress, the result dict.

The output protocol: a job's driver prints one line per event, `RAYKIT_<KIND> <json>`, flushed
at once, so a runner that reads the job's log can pick them out of whatever else Ray prints:

    RAYKIT_MANIFEST {"python": "3.13.5", "python_executable": ..., "venv": ..., "ray": ..., ...}
    RAYKIT_PROGRESS {"done": 120, "total": 10000}
    RAYKIT_RESULT {"workload": "fake_nn", "wall_s": 3.41, ...}

This module imports no workload (the registry is `workloads.registry`), so every workload can
import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import ray

KINDS = ("MANIFEST", "PROGRESS", "RESULT")
PREFIX = "RAYKIT_"
# At most this many progress calls a second (plus the final one).
PROGRESS_INTERVAL_S = 0.5

ProgressFn = Callable[[int, int], None]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def protocol_line(kind: str, payload: dict[str, Any]) -> str:
    """The line `emit` prints: `RAYKIT_<KIND> <json on one line>`."""
    kind = kind.upper()
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    return f"{PREFIX}{kind} {json.dumps(payload, default=_json_default, sort_keys=True)}"


def parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """The (kind, payload) of a protocol line, None for any other line (the runner's side)."""
    head, _, rest = line.strip().partition(" ")
    if not head.startswith(PREFIX) or head[len(PREFIX) :] not in KINDS:
        return None
    return head[len(PREFIX) :], json.loads(rest)


def emit(kind: str, payload: dict[str, Any]) -> None:
    """Print one protocol line and flush, so it reaches the job log now."""
    print(protocol_line(kind, payload), flush=True)


def manifest() -> dict[str, Any]:
    """What this driver runs on: interpreter, venv, Ray. Needs no Ray cluster."""
    from workloads import STARTED

    return {
        "driver_started": STARTED,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "venv": sys.prefix,
        "ray": ray.__version__,
        "numpy": np.__version__,
        "hostname": socket.gethostname(),
    }


def checksum(outputs: Iterable[Any]) -> str:
    """sha256 (hex) of the outputs as float64 rounded to 6 decimals, concatenated in order.

    Each output may be a number, an array or a list of arrays; it is flattened. Rounding
    absorbs the last bits that differ between BLAS builds, and -0.0 counts as 0.0.
    """
    digest = hashlib.sha256()
    for out in outputs:
        arr = np.asarray(out, dtype=np.float64).ravel()
        arr = np.round(arr, 6) + 0.0  # + 0.0 turns -0.0 into 0.0
        digest.update(arr.astype("<f8").tobytes())
    return digest.hexdigest()


def output_sum(outputs: Iterable[Any]) -> float:
    """The sum of every output value (unrounded), as a plain float."""
    return float(sum(float(np.sum(np.asarray(out, dtype=np.float64))) for out in outputs))


class Progress:
    """Calls `fn(done, total)` at most every PROGRESS_INTERVAL_S seconds, and always when
    done == total (once). `fn` None: does nothing."""

    def __init__(self, fn: ProgressFn | None, total: int) -> None:
        self.fn = fn
        self.total = total
        self._last = -math.inf
        self._finished = False

    def __call__(self, done: int) -> None:
        if self.fn is None or self._finished:
            return
        now = time.monotonic()
        if done >= self.total:
            self._finished = True
        elif now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        self.fn(done, self.total)


def wait_all(refs: Sequence[ray.ObjectRef], progress: Progress) -> list[Any]:
    """ray.get of `refs` in order, counting completions with ray.wait as they come in."""
    pending = list(refs)
    done = 0
    if not pending:
        progress(0)
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=PROGRESS_INTERVAL_S)
        done += len(ready)
        progress(done)
    return ray.get(list(refs))


def cluster_info() -> dict[str, Any]:
    """The cluster's CPUs (total and free now) and alive nodes, as the seed printed them, and
    `node_cpus`: the CPUs each alive node announced to Ray, by node IP."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "cluster_cpus": ray.cluster_resources().get("CPU", 0.0),
        "available_cpus": ray.available_resources().get("CPU", 0.0),
        "nodes": len(alive),
        "node_cpus": {
            str(n.get("NodeManagerAddress")): float((n.get("Resources") or {}).get("CPU", 0.0))
            for n in sorted(alive, key=lambda n: str(n.get("NodeManagerAddress")))
        },
    }


class Work:
    """What one worker (an actor) did: calls, seconds inside them, and the wall-clock time
    (time.time(), its node's clock) of its first call's start and its last call's end."""

    def __init__(self) -> None:
        self.calls = 0
        self.busy_s = 0.0
        self.first_start: float | None = None
        self.last_end: float | None = None

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        began, t0 = time.time(), time.perf_counter()
        try:
            yield
        finally:
            self.busy_s += time.perf_counter() - t0
            self.calls += 1
            if self.first_start is None:
                self.first_start = began
            self.last_end = time.time()

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "busy_s": self.busy_s,
            "first_start": self.first_start,
            "last_end": self.last_end,
        }


def node_work(done: Iterable[tuple[str, dict[str, Any]]], start_epoch: float) -> dict[str, Any]:
    """Per node IP, the sum of its workers' Work (`done`: (node IP, Work.to_dict()) pairs):
    workers, calls, busy_s (seconds inside calls, summed over its workers: above the wall
    time when several ran at once), first_start_s and last_end_s (seconds since
    `start_epoch`, the driver's time.time() at the first submission; None before any
    call). The times compare the nodes' clocks with the driver's: on hosts kept in sync (NTP)
    that is off by milliseconds."""
    nodes: dict[str, dict[str, Any]] = {}
    for ip, work in done:
        node = nodes.setdefault(
            ip,
            {"workers": 0, "calls": 0, "busy_s": 0.0, "first_start_s": None, "last_end_s": None},
        )
        node["workers"] += 1
        node["calls"] += int(work["calls"])
        node["busy_s"] += float(work["busy_s"])
        for key, pick, stamp in (
            ("first_start_s", min, work.get("first_start")),
            ("last_end_s", max, work.get("last_end")),
        ):
            if stamp is not None:
                rel = float(stamp) - start_epoch
                node[key] = rel if node[key] is None else pick(node[key], rel)
    for node in nodes.values():
        node["busy_s"] = round(node["busy_s"], 4)
        for key in ("first_start_s", "last_end_s"):
            if node[key] is not None:
                node[key] = round(node[key], 4)
    return dict(sorted(nodes.items()))


def result(
    workload: str,
    params: dict[str, Any],
    *,
    wall_s: float,
    tasks: int,
    per_node: dict[str, int],
    outputs: Sequence[Any],
    **extra: Any,
) -> dict[str, Any]:
    """The result dict of docs/reports.md, plus `extra` keys."""
    return {
        "workload": workload,
        "params": params,
        "wall_s": wall_s,
        "tasks": tasks,
        "per_node": dict(sorted(per_node.items())),
        "checksum": checksum(outputs),
        "output_sum": output_sum(outputs),
        **extra,
    }
