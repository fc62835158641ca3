"""Run one workload on the cluster this node belongs to, printing the protocol lines.

    python -m workloads NAME [--set key=value ...]
    python -m workloads --list

Prints RAYKIT_MANIFEST (before connecting to Ray), RAYKIT_PROGRESS as results come in, a few
human-readable lines, then RAYKIT_RESULT. A failing workload exits non-zero with its
traceback and no RESULT line; a bad --set exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import ray

from workloads import _common
from workloads.registry import WORKLOADS, defaults, parse_sets


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workloads",
        description="Run one of raykit's workloads on the Ray cluster (address='auto').",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help=", ".join(WORKLOADS))
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a workload parameter (repeatable), e.g. --set preset=small",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the workloads and their parameters"
    )
    return parser


def _show(value: Any) -> str:
    """A default as --set takes it back."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _summary(res: dict[str, Any]) -> list[str]:
    nodes = ", ".join(f"{ip}={n}" for ip, n in res["per_node"].items())
    return [
        f"{res['workload']}: {res['tasks']} remote calls, per node: {nodes or '-'}",
        f"checksum: {res['checksum']}  output sum: {res['output_sum']:.6g}",
        f"wall time: {res['wall_s']:.2f} s",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for name in WORKLOADS:
            params = " ".join(f"{k}={_show(v)}" for k, v in defaults(name).items())
            print(f"{name}: {params}")
        return 0
    if args.name is None:
        parser.error("NAME is required (or --list)")
    try:
        params = parse_sets(args.name, args.sets)
    except ValueError as exc:
        parser.error(str(exc))  # exits 2

    _common.emit("MANIFEST", _common.manifest())
    if not ray.is_initialized():  # (a test may have started one)
        ray.init(address="auto")

    def progress(done: int, total: int) -> None:
        _common.emit("PROGRESS", {"done": done, "total": total})

    res = WORKLOADS[args.name].run(**params, progress=progress)
    for line in _summary(res):
        print(line, flush=True)
    # driver_ended (with the manifest's driver_started): the driver's own time, for the runner.
    _common.emit("RESULT", {**res, "driver_ended": time.time()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
