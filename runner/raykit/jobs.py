"""Ray jobs on the cluster through Ray's own job client, with the cluster's token.

A job's driver speaks a small line protocol on its stdout (workloads/_common.py):
``RAYKIT_MANIFEST {json}``, ``RAYKIT_PROGRESS {"done": n, "total": m}``, ``RAYKIT_RESULT {json}``.
Everything else in the log is the job's own output, kept in the report; when the job fails,
explain_failure() finds the line in it that says why.
"""

from __future__ import annotations

import importlib
import re
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


# --- why a job failed ----------------------------------------------------------------------

CAUSE_LIMIT = 240  # characters of the one-line cause
DETAIL_LINES = 60  # lines of the text behind it

# Terminal escapes: CSI (colours, cursor), OSC (titles, links), character sets, the rest.
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]+[0-~]|[@-Z\\-_])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What Ray puts before a line it relays from another process: (raylet, ip=10.89.0.12),
# (FakeNN pid=2211, ip=10.89.0.12), (pid=2211), (autoscaler +1m2s).
_RELAYED = re.compile(
    r"^\((?:[\w.:<>-]+ )?(?:pid=\S+|raylet|gcs_server|autoscaler)(?:,? [^)]*)?\) ?"
)
# Log deduplication's suffix, with its one-time advice.
_REPEATED = re.compile(r"\s*\[repeated \d+x across cluster\](?: \(Ray deduplicates logs.*)?$")
# A line of a logger (2026-12-01 21:07:15,230 INFO ..., [2026-12-01 21:07:14,102 E ...]) or of
# a native stack dump (*** SIGTERM received ..., PC: @ ..., @ 0x..., raylet(+0x8bbdcb)).
_NOT_PYTHON = re.compile(
    r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d|^\*\*\* |^PC: @|^\s*@\s+0x|\(\+0x[0-9a-f]+\)"
)
# An exception as Python prints it: `ValueError: ...`, `ray.exceptions.ActorDiedError: ...`,
# `ray.exceptions.RayTaskError(ValueError): ...`, or a bare `KeyboardInterrupt`.
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Warning)"
    r"(?:\([\w.]+\))?(?::\s.*|:?$)"
)
# Where a remote call ran, in a RayTaskError: `ray::square() (pid=2211, ip=10.89.0.12, ...)`.
_WHERE = re.compile(r"(ray::[\w.<>]+\(\)) \(([^)]*)\)")
_TRACEBACK = "Traceback (most recent call last):"


def plain_text(text: Any) -> str:
    """Terminal output as plain text: colour codes, other escapes and control characters
    removed (tabs and newlines stay)."""
    return _CONTROL.sub("", _ANSI.sub("", str(text)))


@dataclass(frozen=True)
class Failure:
    """Why a job failed: `cause`, one line (the report's `error` names it); `detail`, the lines
    behind it (its traceback, or Ray's message), "" when they say no more than `cause`."""

    cause: str
    detail: str


def explain_failure(status: str, message: str, log: str) -> Failure:
    """The cause of a failed job, from its terminal `status`, Ray's `message` and its log.

    In order: a STOPPED job's message (someone stopped it; what the log says after is the
    consequence); the exception that ended the last Python traceback of the log (or of the
    message, when the log could not be read), for a RayTaskError the exception raised in the
    task and where it ran; the last line that reads as an exception; Ray's message without the
    log lines it repeats. Lines Ray relays from other processes (the raylet's stack dumps,
    ``[repeated 3x across cluster]``) count only when nothing else does. Colour codes are
    removed; the cause is one line of at most CAUSE_LIMIT characters."""
    said = _own_words(plain_text(message))
    if status == "STOPPED" and said:
        return _from_message(said)
    texts = [plain_text(log).splitlines(), plain_text(message).splitlines()]
    for lines in texts:
        found = _last_traceback(lines)
        if found:
            return found
    for relayed in (False, True):
        for lines in texts:
            found = _last_exception(lines, relayed)
            if found:
                return found
    return _from_message(said)


def _from_message(said: list[str]) -> Failure:
    if not said:
        return Failure("", "")
    return Failure(_shorten(said[0]), "\n".join(said[:DETAIL_LINES]) if len(said) > 1 else "")


def _own_words(message: str) -> list[str]:
    """Ray's message without the log it appends: `Job entrypoint command failed with exit code
    1, last available logs (truncated to 20,000 chars):` and then the log's last lines."""
    head, sep, _ = message.partition(", last available logs")
    lines = [line.rstrip() for line in head.splitlines() if line.strip()]
    return lines[:1] if sep else lines


def _last_traceback(lines: list[str]) -> Failure | None:
    """The exception ending the last traceback Python printed in `lines`, with the traceback."""
    starts = [
        i for i, line in enumerate(lines) if line.strip() == _TRACEBACK and not line[0].isspace()
    ]
    if not starts:
        return None
    block = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1 :]:
        if _RELAYED.match(line) or _NOT_PYTHON.search(line) or line.startswith("RAYKIT_"):
            break
        block.append(line)
    # The frames are indented; the exception is the first line that is not, then any other
    # exception inside its message (a RayTaskError carries the task's own traceback).
    first = next((i for i, line in enumerate(block) if i and line[:1] not in ("", " ", "\t")), None)
    if first is None:
        return None
    raised = [first] + [i for i in range(first + 1, len(block)) if _EXCEPTION.match(block[i])]
    last = raised[-1]
    cause = block[last].strip()
    # A message of several lines: its next unindented line, e.g. ActorDiedError's "The actor
    # is dead because its node has died." after its indented class_name, actor_id, pid, ip.
    rest = next(
        (
            line.strip()
            for line in block[last + 1 :]
            if line.strip() and line[:1] not in (" ", "\t")
        ),
        "",
    )
    if rest:
        cause = f"{cause} {rest}"
    where = _WHERE.search(block[first]) if last != first else None
    if where:
        places = [p for p in where.group(2).split(", ") if p.startswith(("pid=", "ip="))]
        cause = f"{cause} (in {', '.join([where.group(1), *places])})"
    if len(block) > DETAIL_LINES:
        left_out = f"  ... ({len(block) - DETAIL_LINES + 1} lines left out)"
        block = [block[0], left_out, *block[-(DETAIL_LINES - 2) :]]
    return Failure(_shorten(cause), "\n".join(line.rstrip() for line in block))


def _last_exception(lines: list[str], relayed: bool) -> Failure | None:
    """The last line that reads as an exception, with the lines of its message that follow;
    lines relayed from other processes only when `relayed`."""
    found: int | None = None
    texts: list[str] = []
    for i, line in enumerate(lines):
        text = _REPEATED.sub("", line)
        prefix = _RELAYED.match(text)
        if prefix:
            text = text[prefix.end() :] if relayed else ""
        texts.append(text)
        if text and not _NOT_PYTHON.search(text) and _EXCEPTION.match(text):
            found = i
    if found is None:
        return None
    detail = [texts[found].rstrip()]
    for text in texts[found + 1 :]:
        if not text.strip() or _NOT_PYTHON.search(text) or len(detail) >= DETAIL_LINES:
            break
        detail.append(text.rstrip())
    return Failure(_shorten(detail[0]), "\n".join(detail) if len(detail) > 1 else "")


def _shorten(line: str, limit: int = CAUSE_LIMIT) -> str:
    text = " ".join(line.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
