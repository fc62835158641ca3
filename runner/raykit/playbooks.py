"""Run raykit's playbooks through ansible-runner, with a compact live view and a summary."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
from rich.console import Console
from rich.padding import Padding
from rich.text import Text

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What a playbook run did, per host, and where it failed."""

    rc: int
    status: str
    seconds: float
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    artifact_dir: str = ""
    # Where the time went: (play, seconds) in order, and the slowest task results.
    plays: list[tuple[str, float]] = field(default_factory=list)
    slowest: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class HostProgress:
    """One host's progress in the current run: counters and what it is doing now."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    task: str = ""
    since: float = 0.0
    state: str = "waiting"


RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "failed",
    "runner_on_skipped": "skipped",
}


class ProgressView:
    """Turns runner events into one line per play, changed task and failure, and keeps each
    host's progress (``hosts``) for a live per-host table (``table()``) on a terminal."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose
        self.failures: list[dict[str, str]] = []
        self.messages: list[str] = []
        self.hosts: dict[str, HostProgress] = {}
        self.play = ""
        self._task_start = 0.0
        self.plays: list[tuple[str, float]] = []
        self._play_start = 0.0
        self.task_times: list[dict[str, Any]] = []
        # Unreachable results per host, also those a task ignored to report them itself
        # (preflight): Ansible's own stats count only the others.
        self.unreachable: dict[str, int] = {}
        self._unreachable_ids: set[int] = set()

    def close(self) -> None:
        """End the last play's clock (call once the run is over)."""
        if self.play and self._play_start:
            self.plays.append((self.play, time.monotonic() - self._play_start))
            self._play_start = 0.0

    def _track(self, kind: str, data: Mapping[str, Any]) -> None:
        host = data.get("host")
        if kind == "runner_on_unreachable" and host:
            self.unreachable[str(host)] = self.unreachable.get(str(host), 0) + 1
        if kind == "playbook_on_play_start":
            self.close()
            self.play = str(data.get("play", ""))
            self._play_start = time.monotonic()
        if kind in RESULT_EVENTS and isinstance(data.get("duration"), int | float):
            self.task_times.append(
                {
                    "play": self.play,
                    "task": str(data.get("task", "")),
                    "host": str(host or ""),
                    "seconds": float(data["duration"]),
                }
            )
        if not host or host == "localhost":
            return
        h = self.hosts.setdefault(str(host), HostProgress())
        if kind == "runner_on_start":
            h.task, h.since, h.state = str(data.get("task", "")), time.monotonic(), "running"
        elif kind in RESULT_EVENTS:
            outcome = RESULT_EVENTS[kind]
            if outcome == "failed" and data.get("ignore_errors"):
                outcome = "ok"
            res = data.get("res", {}) or {}
            if outcome == "ok" and res.get("changed"):
                h.changed += 1
            setattr(h, outcome, getattr(h, outcome) + 1)
            h.state = "failed" if outcome == "failed" else "idle"

    def table(self) -> Any:
        """The per-host progress as a rich Table (what the live view shows)."""
        from rich.table import Table

        table = Table(title=self.play or None, title_justify="left", box=None, pad_edge=False)
        for col in ("host", "ok", "changed", "failed", "now"):
            table.add_column(col, justify="left" if col in ("host", "now") else "right")
        now = time.monotonic()
        for name, h in sorted(self.hosts.items()):
            doing = {
                "running": f"{h.task} ({now - h.since:.0f} s)",
                "failed": f"[red]failed at {h.task}[/red]",
            }.get(h.state, "[dim]waiting[/dim]" if h.state == "waiting" else "")
            table.add_row(
                name,
                str(h.ok),
                f"[yellow]{h.changed}[/yellow]" if h.changed else "0",
                f"[red]{h.failed}[/red]" if h.failed else "0",
                doing,
            )
        return table

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {}) or {}
        self._track(kind, data)
        # With -v, Ansible's own output is shown as it comes; failures and messages are
        # still recorded for the summary.
        quiet = self.verbose
        if self.verbose and event.get("stdout"):
            self.console.print(event["stdout"], markup=False, highlight=False)
        if kind == "playbook_on_play_start" and not quiet:
            self.console.print(f"[bold]{data.get('play', '')}[/bold]")
        elif kind == "playbook_on_task_start":
            self._task_start = time.monotonic()
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get(
            "ignore_errors"
        ):
            res = data.get("res", {}) or {}
            msg = str(res.get("msg") or res.get("stderr") or res.get("reason") or "failed")
            fail = {
                "host": str(data.get("host", "?")),
                "task": str(data.get("task", "?")),
                "msg": msg.strip(),
            }
            if fail["msg"].startswith(f"Unreachable: {fail['host']}"):
                # Preflight's own account of an unreachable host (with the fix) replaces
                # Ansible's raw one for the same host.
                self.failures = [
                    f
                    for f in self.failures
                    if not (f["host"] == fail["host"] and id(f) in self._unreachable_ids)
                ]
            if kind == "runner_on_unreachable":
                self._unreachable_ids.add(id(fail))
            self.failures.append(fail)
            if not quiet:
                self.console.print(f"  [red]✗ {fail['host']}[/red]: {fail['task']}")
        elif kind in ("runner_on_ok", "runner_item_on_ok"):
            res = data.get("res", {}) or {}
            debug = data.get("task_action") in ("ansible.builtin.debug", "debug")
            if kind == "runner_item_on_ok" and not debug:
                pass  # a loop's items: its closing result says whether it changed anything
            elif debug and "results" in res:
                pass  # a debug loop's closing "All items completed": each item was shown
            elif debug and res.get("msg"):
                text = (
                    res["msg"] if isinstance(res["msg"], str) else "\n".join(map(str, res["msg"]))
                )
                self.messages.append(text)
                if not quiet:
                    self.console.print(text, markup=False, highlight=False)
            elif res.get("changed") and not quiet:
                self.console.print(
                    f"  [yellow]~ {data.get('host')}[/yellow]: {data.get('task')}", highlight=False
                )
        return True


class _Renderable:
    """Re-renders the view's table at every refresh of the live display."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view

    def __rich__(self) -> Any:
        return self.view.table()


def ansible_env() -> dict[str, str]:
    """The environment for Ansible's commands: the kit's ansible.cfg, this venv's tools."""
    bindir = Path(sys.executable).parent
    return {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run_playbook(
    playbook: str,
    inventory: str | os.PathLike[str],
    *,
    extravars: Mapping[str, Any] | None = None,
    verbose: bool = False,
    limit: str | None = None,
    console: Console | None = None,
) -> Outcome:
    """Run `playbook` (relative to the repository) against `inventory`; never raises on failure."""
    console = console or Console(stderr=True)
    inv = Path(inventory).expanduser().resolve()
    if not inv.exists():
        console.print(f"[red]raykit:[/red] inventory {inv} does not exist.")
        return Outcome(
            rc=2,
            status="failed",
            seconds=0.0,
            failures=[{"host": "-", "task": "inventory", "msg": f"{inv} does not exist"}],
        )
    # One private data dir per run: concurrent runs never share extravars or artifacts.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    private = REPO / ".raykit" / "runs" / f"{stamp}-{Path(playbook).stem}-{os.getpid()}"
    private.mkdir(parents=True, exist_ok=True)
    view = ProgressView(console, verbose)
    env = ansible_env()
    start = time.monotonic()
    live: Any = contextlib.nullcontext()
    if console.is_terminal and not verbose:
        from rich.live import Live

        # The per-host table stays at the bottom while the play and change lines scroll by.
        live = Live(_Renderable(view), console=console, refresh_per_second=4, transient=True)
    with live:
        result = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(REPO),
            playbook=playbook,
            inventory=str(inv),
            extravars=dict(extravars or {}),
            limit=limit,
            envvars=env,
            event_handler=view,
            quiet=True,
            timeout=None,
        )
    seconds = time.monotonic() - start
    view.close()
    stats = result.stats or {}
    per_host: dict[str, dict[str, int]] = {}
    # ansible-runner names Ansible's "unreachable" count "dark".
    keys = {"dark": "unreachable"}
    for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
        for host, n in (stats.get(key) or {}).items():
            per_host.setdefault(host, {})[keys.get(key, key)] = n
    for host, n in view.unreachable.items():
        counts = per_host.setdefault(host, {})
        counts["unreachable"] = max(counts.get("unreachable", 0), n)
    return Outcome(
        rc=int(result.rc or 0),
        status=str(result.status),
        seconds=seconds,
        stats=per_host,
        failures=view.failures,
        messages=view.messages,
        artifact_dir=str(result.config.artifact_dir),
        plays=view.plays,
        slowest=sorted(view.task_times, key=lambda t: -t["seconds"])[:10],
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ORIGIN = re.compile(r"^Origin: .+:\d+:\d+$")


def ansible_words(text: str, tail: int = 8) -> list[str]:
    """What Ansible said when it stopped before any task: its last lines, without colours,
    and the first place it pointed at (`Origin: FILE:LINE:COLUMN`, with the line before)."""
    lines = [ln.rstrip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    out = lines[-tail:]
    for i, line in enumerate(lines):
        if _ORIGIN.match(line):
            if line not in out:
                out = [*lines[max(0, i - 1) : i + 1], *out]
            break
    return out


def step_times(outcome: Outcome) -> dict[str, float]:
    """Seconds per lifecycle step: plays are named `Step | what`, and a step's plays add up."""
    steps: dict[str, float] = {}
    for play, seconds in outcome.plays:
        step = play.split(" | ", 1)[0]
        steps[step] = steps.get(step, 0.0) + seconds
    return steps


def timings(outcome: Outcome) -> dict[str, Any]:
    """A run's timings as JSON-able data (`raykit up --timings FILE`)."""
    return {
        "seconds": round(outcome.seconds, 2),
        "ok": outcome.ok,
        "steps": {step: round(t, 2) for step, t in step_times(outcome).items()},
        "plays": [{"play": p, "seconds": round(t, 2)} for p, t in outcome.plays],
        "slowest_tasks": [{**t, "seconds": round(t["seconds"], 2)} for t in outcome.slowest],
    }


def print_summary(outcome: Outcome, console: Console) -> None:
    from rich.table import Table

    table = Table(
        title=f"{'done' if outcome.ok else 'FAILED'} in {outcome.seconds:.1f} s",
        title_justify="left",
    )
    for col in ("host", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(col, justify="left" if col == "host" else "right")
    for host, s in sorted(outcome.stats.items()):
        if host == "localhost":
            continue
        table.add_row(
            host,
            str(s.get("ok", 0)),
            str(s.get("changed", 0)),
            str(s.get("failures", 0)),
            str(s.get("unreachable", 0)),
            str(s.get("skipped", 0)),
        )
    console.print(table)
    steps = step_times(outcome)
    if len(steps) > 1:
        console.print(
            "time per step: " + ", ".join(f"{s} {t:.0f} s" for s, t in steps.items()),
            highlight=False,
        )
    for f in outcome.failures:
        console.print(f"[red]{f['host']}[/red] failed at [bold]{f['task']}[/bold]:")
        # Indented as a block: a message may name several problems, one per line.
        console.print(Padding(Text(f["msg"]), (0, 0, 0, 2), expand=False))
    if not outcome.ok:
        log = Path(outcome.artifact_dir) / "stdout"
        if not outcome.failures and outcome.artifact_dir:
            # No task failed: Ansible stopped before one ran (an inventory that does not
            # parse, a playbook error). Its own words are the end of its output.
            with contextlib.suppress(OSError):
                text = log.read_text(errors="replace")
                console.print(
                    "\n".join(ansible_words(text)), markup=False, highlight=False, soft_wrap=True
                )
        console.print(f"full log: {log}")
