"""Ray jobs on the cluster through Ray's own job client, with the cluster's token.

A job's driver speaks a small line protocol on its stdout (workloads/_common.py):
``RAYKIT_MANIFEST {json}``, ``RAYKIT_PROGRESS {"done": n, "total": m}``, ``RAYKIT_RESULT {json}``.
Everything else in the log is the job's own output, kept in the report.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class JobError(Exception):
    """The job could not be submitted or followed (not: the job itself failed)."""


def workloads_module(name: str) -> ModuleType:
    """A module of the `workloads` package, which ships to the cluster with every job; the
    control node imports it from the repository (it is not installed in the venv)."""
    from raykit.playbooks import REPO

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(name)


def parse_protocol(log: str) -> dict[str, Any]:
    """The protocol lines of a driver log: manifest, last progress, result (each or None),
    read with the workloads' own parser; a garbled line is skipped."""
    parse_line = workloads_module("workloads._common").parse_line
    out: dict[str, Any] = {"manifest": None, "progress": None, "result": None}
    for line in log.splitlines():
        try:
            parsed = parse_line(line)
        except ValueError:
            continue
        if parsed is not None:
            out[parsed[0].lower()] = parsed[1]
    return out


@dataclass
class JobOutcome:
    job_id: str
    status: str
    message: str
    start: float
    end: float
    log: str
    manifest: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    job_info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED" and self.result is not None

    @property
    def wall_s(self) -> float:
        return self.end - self.start


def client(dashboard_url: str, token: str) -> Any:
    """Ray's JobSubmissionClient for the dashboard, authenticated with the cluster's token."""
    import logging

    from ray.job_submission import JobSubmissionClient

    # The SDK logs every package upload at INFO (its loggers set their own level): noise
    # under a progress bar.
    for name in (
        "ray.dashboard.modules.dashboard_sdk",
        "ray.dashboard.modules.job.sdk",
        "ray._private.runtime_env.packaging",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        return JobSubmissionClient(dashboard_url, headers={"Authorization": f"Bearer {token}"})
    except Exception as exc:  # Ray raises bare ConnectionError/RuntimeError
        raise JobError(
            f"cannot reach Ray's Jobs API at {dashboard_url}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def run_job(
    jobs: Any,
    entrypoint: str,
    *,
    runtime_env: dict[str, Any],
    metadata: dict[str, str] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    poll: float = 0.25,
    clock: Callable[[], float] = time.time,
) -> JobOutcome:
    """Submit, follow until the job ends (Ctrl-C stops the job), return what happened."""
    start = clock()
    try:
        job_id = jobs.submit_job(
            entrypoint=entrypoint, runtime_env=runtime_env, metadata=metadata or {}
        )
    except Exception as exc:  # the client raises RuntimeError for HTTP errors
        raise JobError(f"the job was not accepted: {_one_line(exc)}") from None
    status = "PENDING"
    last_progress = None
    try:
        while True:
            status = str(jobs.get_job_status(job_id).value)
            if on_status:
                on_status(status)
            if status in TERMINAL:
                end = clock()
                break
            if on_progress:
                progress = parse_protocol(jobs.get_job_logs(job_id))["progress"]
                if progress and progress != last_progress:
                    last_progress = progress
                    on_progress(progress)
            time.sleep(poll)
    except KeyboardInterrupt:
        end = clock()
        try:
            jobs.stop_job(job_id)
        finally:
            log = _logs(jobs, job_id)
        raise JobInterrupted(
            JobOutcome(job_id, "STOPPED", "interrupted (Ctrl-C)", start, end, log)
        ) from None
    log = _logs(jobs, job_id)
    info = jobs.get_job_info(job_id)
    proto = parse_protocol(log)
    if on_progress and proto["progress"] and proto["progress"] != last_progress:
        on_progress(proto["progress"])
    message = str(getattr(info, "message", "") or "")
    return JobOutcome(
        job_id=job_id,
        status=status,
        message=message,
        start=start,
        end=end,
        log=log,
        manifest=proto["manifest"],
        result=proto["result"] if status == "SUCCEEDED" else None,
        job_info={
            "start_time": _ms(getattr(info, "start_time", None)),
            "end_time": _ms(getattr(info, "end_time", None)),
            "driver_exit_code": getattr(info, "driver_exit_code", None),
            "entrypoint": entrypoint,
        },
    )


class JobInterrupted(Exception):
    def __init__(self, outcome: JobOutcome) -> None:
        super().__init__("interrupted")
        self.outcome = outcome


def _ms(value: Any) -> float | None:
    return value / 1000.0 if isinstance(value, int | float) else None


def _logs(jobs: Any, job_id: str) -> str:
    try:
        return str(jobs.get_job_logs(job_id))
    except Exception as exc:  # keep the outcome even without its log
        return f"(the job's log could not be read: {_one_line(exc)})"
