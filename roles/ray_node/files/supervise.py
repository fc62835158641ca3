"""Run `ray start --block` as the unit's main process and leave no process behind it.

The unit's main process is this one. It makes itself a child subreaper, so every Ray process
of the node (raylet, agents, workers, orphaned when the raylet dies) is re-parented here
instead of to PID 1. SIGTERM and SIGINT go to `ray start`, which stops the node its own way.
When `ray start` exits (stopped, or because one of its processes died), whatever is left of
the node gets SIGTERM, then SIGKILL after a grace period, is reaped, and this exits with
`ray start`'s status.

Why: the unit's control group is then empty when its main process exits, so systemd never
sits in stop-sigterm waiting out TimeoutStopSec. It used to: systemd 252 on the legacy cgroup
hierarchy (containers, WSL) can miss the exit of a process that dies in the same instant as
the main process, and then waits the whole timeout for a process that is already gone.

usage: supervise.py [--grace SECONDS] -- COMMAND [ARG...]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def make_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux >= 3.4)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_of(stat: str) -> int:
    """The parent PID from the text of /proc/PID/stat (the name may hold spaces or ')')."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(root: int) -> list[int]:
    """Every live process below `root`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = parent_of((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def reap() -> None:
    """Collect every child that has exited, without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def clean_up(grace: float) -> list[int]:
    """SIGTERM whatever is left below this process, SIGKILL it after `grace` seconds, reap
    it all. Returns the PIDs that needed SIGKILL."""
    me = os.getpid()
    left = descendants(me)
    if not left:
        return []
    signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        reap()
        left = descendants(me)
    killed = list(left)
    signal_all(left, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        reap()
        left = descendants(me)
    return killed


def exit_status(status: int) -> int:
    """A `subprocess` return code as a shell would report it."""
    return 128 - status if status < 0 else status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grace", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    if not make_subreaper():
        print("supervise: cannot become a subreaper; leftovers go to PID 1", file=sys.stderr)
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    # Wait for the command, reaping orphans re-parented here on the way.
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            break
    code = exit_status(child.returncode if child.returncode is not None else 1)

    killed = clean_up(args.grace)
    if killed:
        print(
            f"supervise: {len(killed)} process(es) outlived the command by {args.grace:g} s"
            f" and were killed: {' '.join(map(str, killed))}",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
